"""Learning-rate decay (Stable Learning Control's lr_decay_type): constant, linear or exponential."""

from __future__ import annotations


def decayed_lr(initial: float, final: float, decay: str, progress: float) -> float:
    """The learning rate after a fraction `progress` in [0, 1] of training.

    linear:      initial + (final - initial) * progress
    exponential: initial * (final / initial) ** progress   (a constant factor per step or epoch)
    """
    progress = min(max(progress, 0.0), 1.0)
    if decay == "constant":
        return initial
    if decay == "linear":
        return initial + (final - initial) * progress
    if decay == "exponential":
        return initial * (final / initial) ** progress
    raise ValueError(f"unknown learning-rate decay '{decay}'")
