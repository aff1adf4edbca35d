"""sac-runner: a config-driven experiment runner for Soft Actor-Critic."""

__version__ = "0.2.0"
