"""Typed schemas for every config group: plain dataclasses, importable without Hydra (a notebook can
build `AgentConfig()` and hand it to `sac_runner.algo.sac.SAC` with torch alone).

The command line's side lives elsewhere: cli/config_store.py registers these schemas in Hydra's
ConfigStore, and the primary config (conf/config.yaml) starts its defaults list with `run_schema`, so
every group file merged into it is checked against them: an unknown key or a value of the wrong type
fails at compose time with Hydra's own message. Checks that a type cannot express (ranges,
cross-group constraints) live in ``__post_init__`` and run when run/run_config.py's ``to_run_config``
turns the composed config into these dataclasses, before anything is built.

These dataclasses are the one source of defaults: a YAML option in conf/ lists only what it changes.
The module is long on purpose (over 300 lines): every key's meaning, default and range check sit
together here, one schema per config group, and nothing else lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from sac_runner.algo.blocks import ACTIVATIONS, ENCODERS, NORMS
from sac_runner.errors import ConfigError


def _require(ok: bool, key: str, problem: str, fix: str) -> None:
    if not ok:
        raise ConfigError(f"{key} {problem}; {fix}")


MAX_SEED = 2**32 - 1  # NumPy's and Gymnasium's seeds are unsigned 32-bit


def _require_seed(seed: int, key: str = "seed") -> None:
    _require(0 <= seed <= MAX_SEED, key, f"must be in 0 .. {MAX_SEED} (2**32 - 1), got {seed}",
             f"set {key}=0 or another non-negative integer")


# Shimmy's Gymnasium ids of the DeepMind Control Suite: dm_control/<domain>-<task>-v0.
DMC_PREFIX, DMC_SUFFIX = "dm_control/", "-v0"


# Atari through ale-py: ALE/<Game>-v5.
ATARI_PREFIX = "ALE/"
# Pixel observations the convolutional encoders take (a DrQ encoder needs at least 64; larger costs memory).
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 64, 128
# Action repeat by DMC domain from pixels (Kostrikov, Yarats and Fergus, 2020, Table 2; Hafner et al., 2019).
DRQ_ACTION_REPEAT = {"cartpole": 8, "reacher": 4, "cheetah": 4, "ball_in_cup": 4, "walker": 2, "finger": 2}


def dmc_id(task: str) -> str:
    """The Gymnasium id of a DeepMind Control Suite task "<domain>-<task>" (Shimmy registers it)."""
    return f"{DMC_PREFIX}{task}{DMC_SUFFIX}"


@dataclass
class EnvConfig:
    id: str = "Pendulum-v1"  # a registered Gymnasium id (module:Name-v0 imports the module first)
    # A DeepMind Control Suite task from states, "<domain>-<task>" (cheetah-run, walker-walk,
    # ball_in_cup-catch; needs the dmc extra), or null. It picks the environment through env.id: env=dmc
    # sets env.id to dm_control/${env.task}-v0 (Shimmy's Gymnasium id), so `env=dmc env.task=walker-walk`
    # is the whole command; a task with any other env.id is refused.
    task: Optional[str] = None
    # None keeps the environment's registered time limit (Atari: v5's 108,000 frames; a limit set here
    # counts agent steps, after the frame skip).
    max_episode_steps: Optional[int] = None
    # Extra keyword arguments for gymnasium.make (e.g. {ctrl_cost_weight: 0.1}).
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Normalize observations by a running mean and std (updated from training steps only, frozen
    # during evaluation, saved with the agent); normalized values are clipped to +-normalize_obs_clip.
    normalize_obs: bool = False
    normalize_obs_clip: float = 10.0
    # Exceptions from the environment's step tolerated per run: each one records the episode as broken,
    # rebuilds the environment and carries on; one more stops the run (0 = stop at the first).
    max_failures: int = 3
    # Environments stepped together (gymnasium.vector), acting through one batched actor call. The
    # schedule counts environment transitions: a vector step adds num_envs of them, and the
    # update-to-data ratio stays gradient_steps / update_every per transition.
    num_envs: int = 1
    # sync: the environments step one after another in this process (cheap ones: MuJoCo, classic
    # control); async: one subprocess each (environments whose step is slow).
    vectorization: str = "sync"
    # Learn from images: the environment's rgb_array rendering (a DMC task, any Gymnasium task that
    # renders) replaces its observation, resized to image_size x image_size and stacked frame_stack deep,
    # channels first, uint8: (frame_stack * 3, image_size, image_size). Atari (env=atari) observes pixels
    # by nature and sets its own preprocessing (run/atari.py).
    pixels: bool = False
    image_size: int = 84  # height and width of a pixel observation (the encoders take 64 .. 128)
    # Frames per observation; null: 3 for pixels (DrQ), 1 otherwise (env=atari: 4).
    frame_stack: Optional[int] = None
    # Environment steps per agent step: the action is repeated, the rewards summed, one frame rendered.
    # null: DrQ's per-task value for the six PlaNet tasks with env.pixels=true (cartpole 8, reacher,
    # cheetah and ball_in_cup 4, walker and finger 2), Atari's frame skip of 4, 1 elsewhere. The schedule
    # counts environment steps (Atari: frames).
    action_repeat: Optional[int] = None
    # The camera pixels are rendered from: a DMC camera id (null: 0, 2 for quadruped) or a MuJoCo
    # camera name / id for Gymnasium tasks (null: the task's default view).
    camera: Optional[Union[int, str]] = None
    # Atari preprocessing (env=atari, run/atari.py; Mnih et al., 2015): 1 to noop_max random no-ops at
    # every reset (0: none). The other two apply to the training environments only: evaluation, and
    # train/episode_return, report the game's score.
    noop_max: int = 30
    terminal_on_life_loss: bool = False  # a lost life ends the training episode; the next one is a new game
    clip_rewards: bool = False  # training rewards clipped to [-1, 1] (their sign: Atari's are whole numbers)

    def __post_init__(self) -> None:
        _require(bool(self.id), "env.id", "is empty", "set env.id=<a registered Gymnasium id>")
        _require(MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE, "env.image_size",
                 f"must be in {MIN_IMAGE_SIZE} .. {MAX_IMAGE_SIZE} (what the encoders take), got {self.image_size}",
                 "set env.image_size=84")
        if self.frame_stack is not None:
            _require(self.frame_stack >= 1, "env.frame_stack", f"must be at least 1, got {self.frame_stack}",
                     "set env.frame_stack=3 (or null for the default)")
        if self.action_repeat is not None:
            _require(self.action_repeat >= 1, "env.action_repeat", f"must be at least 1, got {self.action_repeat}",
                     "set env.action_repeat=1 (or null for the default)")
        _require(self.noop_max >= 0, "env.noop_max", f"must be >= 0, got {self.noop_max}", "set env.noop_max=30")
        if self.task is not None:
            _require(re.fullmatch(r"\w+-\w+", self.task) is not None, "env.task",
                     f"must be <domain>-<task>, got '{self.task}'", "set env.task=cheetah-run or another DMC task")
            _require(self.id == dmc_id(self.task), "env.id", f"must be dm_control/<env.task>-v0 "
                     f"({dmc_id(self.task)}) while env.task is set, got {self.id}", f"choose the task with "
                     f"env=dmc env.task={self.task}, or set env.task=null for another environment")
        if self.max_episode_steps is not None:
            _require(self.max_episode_steps > 0, "env.max_episode_steps",
                     f"must be positive, got {self.max_episode_steps}", "set it to a step count or null")
        _require(self.max_failures >= 0, "env.max_failures", f"must be >= 0, got {self.max_failures}",
                 "set env.max_failures=3 (0 stops at the first environment error)")
        _require(self.num_envs >= 1, "env.num_envs", f"must be at least 1, got {self.num_envs}", "set env.num_envs=1")
        _require(self.vectorization in ("sync", "async"), "env.vectorization",
                 f"must be sync or async, got '{self.vectorization}'", "set env.vectorization=sync")

    @property
    def is_atari(self) -> bool:
        return self.id.startswith(ATARI_PREFIX)

    @property
    def observes_pixels(self) -> bool:
        """Observations are images: env.pixels, or an Atari game."""
        return self.pixels or self.is_atari

    @property
    def frames_per_observation(self) -> int:
        if self.frame_stack is not None:
            return self.frame_stack
        return 4 if self.is_atari else 3 if self.pixels else 1

    @property
    def env_steps_per_agent_step(self) -> int:
        """env.action_repeat, or its default: DrQ's per-task value for the PlaNet tasks from pixels."""
        if self.action_repeat is not None:
            return self.action_repeat
        if self.is_atari:
            return 4  # the frame skip of run/atari.py
        if self.pixels and self.task is not None:
            return DRQ_ACTION_REPEAT.get(self.task.split("-")[0], 1)
        return 1


LR_DECAYS = ("constant", "linear", "exponential")
OPTIMIZED = ("actor", "critic", "alpha", "value")
ACTION_SPACES = ("auto", "continuous", "discrete")
COMPILE_MODES = ("auto", "off", "compile", "cudagraphs")
ACTOR_Q = ("min", "mean")
ARCHITECTURES = ("mlp", "simba")
AUGMENTATIONS = ("none", "shift")
ENCODER_CHOICES = ("auto", *ENCODERS)


@dataclass
class AgentConfig:
    # auto: continuous SAC for a Box action space, discrete SAC (Christodoulou, 2019) for a Discrete
    # one. continuous / discrete insist on one and refuse an environment of the other kind.
    action_space: str = "auto"
    # Learning rates (Adam), one per optimized quantity; `value` is the V network of value_network=true.
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    value_lr: float = 3e-4
    # Learning-rate decay (Stable Learning Control's options): constant, or linear / exponential from
    # <name>_lr down to <name>_lr_final over training, counted per environment step or per epoch.
    lr_decay: str = "constant"
    lr_decay_ref: str = "step"  # what the decay counts: environment steps, or epochs (schedule.steps_per_epoch)
    # Per-optimizer decay type; null uses lr_decay.
    actor_lr_decay: Optional[str] = None
    critic_lr_decay: Optional[str] = None
    alpha_lr_decay: Optional[str] = None
    value_lr_decay: Optional[str] = None
    actor_lr_final: float = 1e-10  # the actor's learning rate at the end of a decay
    critic_lr_final: float = 1e-10  # the critics' learning rate at the end of a decay
    alpha_lr_final: float = 1e-10  # the temperature's learning rate at the end of a decay
    value_lr_final: float = 1e-10  # the V network's learning rate at the end of a decay
    gamma: float = 0.99  # discount factor of future rewards
    # Polyak averaging rate of the targets: target <- tau * online + (1 - tau) * target (1 = hard copy).
    tau: float = 0.005
    # Temperature: "auto" learns log(alpha) toward target_entropy; a number keeps alpha fixed.
    alpha: Union[float, str] = "auto"
    alpha_init: float = 1.0  # the learned temperature's starting value (alpha=auto)
    # "auto" means -dim(A) for continuous actions (Haarnoja et al., 2019) and
    # target_entropy_ratio * log|A| for discrete ones. Christodoulou (2019) uses 0.98; on CartPole
    # that target is out of the policy's reach and alpha grows without bound (to 2e5 by 50k steps,
    # Q to 3e6), as it does at 0.89; 0.7 keeps alpha near 1 (docs/agents.md).
    target_entropy: Union[float, str] = "auto"
    target_entropy_ratio: float = 0.7
    num_critics: int = 2  # Q networks in the ensemble; the target and the actor take their min (clipped double Q)
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])  # hidden layer widths of every network
    # Network-specific widths; null uses hidden_sizes.
    actor_hidden_sizes: Optional[list[int]] = None
    critic_hidden_sizes: Optional[list[int]] = None
    activation: str = "relu"  # hidden activation of every network (algo/blocks.py ACTIVATIONS)
    # The 2018 variant: a state-value network V and its target; the Q target is r + gamma * V'(s').
    value_network: bool = False
    # Multiplies the reward in the critic target (Haarnoja et al., 2018, Fig. 3: reward scale ablation).
    reward_scale: float = 1.0
    # minimize treats the environment's signal as a cost (Stable Learning Control's opt_type).
    objective: str = "maximize"
    # Clip each network's gradient to this global norm; null = no clipping.
    max_grad_norm: Optional[float] = None
    # Counted in gradient steps: actor and temperature are updated every `policy_update_every`-th
    # step (MATLAB's PolicyUpdateFrequency, TD3's delay), the targets every `target_update_every`-th
    # (with tau: 1 and tau<1 = smoothing, K>1 and tau=1 = periodic, K>1 and tau<1 = periodic smoothing).
    policy_update_every: int = 1
    target_update_every: int = 1
    # CleanRL's variant of the delay: when due, the actor and temperature take policy_update_every
    # steps in a row, so they get as many steps as the critics.
    policy_update_catch_up: bool = False
    # How the update and the policy run (algo/compilation.py): off (eager), compile (torch.compile of a
    # functional update), cudagraphs (compiled and replayed as CUDA graphs; CUDA only); auto = the fastest
    # that a probe in a child process runs (else off; run/compile_probe.py): on CUDA cudagraphs, then
    # compile; on a CPU compile for MLP agents with 50k gradient steps or more ahead (not DroQ), else off.
    compile: str = "auto"
    # The building blocks of the 2022-2025 variants (agent=crossq, agent=droq; algo/networks.py Body).
    # Hidden-layer normalization of critics and actor: none, layer (LayerNorm, DroQ) or batch_renorm
    # (Batch Renormalization, CrossQ: its critics take current and next state-actions in one joint
    # forward pass, so it needs target_network=false).
    critic_norm: str = "none"
    actor_norm: str = "none"
    batch_renorm_momentum: float = 0.01    # running statistics' rate (PyTorch's convention: 1 - decay)
    batch_renorm_warmup: int = 100_000     # gradient steps of plain batch normalization before renormalizing
    critic_dropout: float = 0.0            # dropout after each hidden Linear of the critics (DroQ: 0.01)
    # What the actor's loss maximizes of the critics' Q_i(s, a): min (SAC) or mean (REDQ and DroQ,
    # Hiraoka et al., 2022, Algorithm 2 line 10). The critics' target keeps the min either way.
    actor_q: str = "min"
    # false: no target networks; the bootstrap uses the online critics (or V) with gradients stopped.
    target_network: bool = True
    # Adam's (beta1, beta2) for every network and alpha (CrossQ: beta1 = 0.5).
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    # Resets (Nikishin et al., 2022): every `reset_every` gradient steps (0 = never) the networks named
    # in reset_networks (actor, critic, value) are re-initialized, their optimizer state cleared and
    # their target copied from them; the replay buffer and alpha are kept.
    reset_every: int = 0
    reset_networks: list[str] = field(default_factory=lambda: ["actor", "critic"])
    # Weight normalization (Palenicek et al., 2025, with CrossQ): the networks named here (actor, critic,
    # value) keep each hidden unit's incoming weights at unit norm, projected after every optimizer
    # step; the output layer is left free. Meant with a normalization (critic_norm, SimBa) that makes
    # the network insensitive to its weights' scale, so the effective learning rate stays constant.
    weight_norm: list[str] = field(default_factory=list)
    # mlp, or simba: SimBa's residual blocks (Lee et al., 2024), one per entry of the hidden sizes,
    # all of one width (e.g. [512, 512]); with env.normalize_obs=true for its observation normalization.
    critic_architecture: str = "mlp"
    actor_architecture: str = "mlp"
    # Image observations (env.pixels, env=atari) pass through a convolutional encoder (algo/blocks.py
    # ENCODERS): auto = drq (Kostrikov et al., 2020: four 3x3 convolutions of 32 channels, the first
    # with stride 2, a Linear to feature_dim, LayerNorm, tanh), or nature (Mnih et al., 2015). The
    # critics share it and train it; the actor reads its features detached. Ignored for state observations.
    encoder: str = "auto"
    feature_dim: int = 50  # the drq encoder's output features (nature's is 512)
    # Polyak rate of the target critics' encoder (SAC-AE: 0.05, faster than its critics' 0.01; DrQ: 0.01).
    encoder_tau: float = 0.05
    # Image augmentation of sampled observations and next observations, independently, on the training
    # device: none, or shift (DrQ: pad 4 pixels by repeating the border, crop back at a random offset).
    augmentation: str = "none"

    def __post_init__(self) -> None:
        _require(self.compile in COMPILE_MODES, "agent.compile",
                 f"must be one of {', '.join(COMPILE_MODES)}, got '{self.compile}'", "set agent.compile=auto")
        _require(self.action_space in ACTION_SPACES, "agent.action_space",
                 f"must be one of {', '.join(ACTION_SPACES)}, got '{self.action_space}'",
                 "set agent.action_space=auto")
        _require(0 < self.target_entropy_ratio <= 1, "agent.target_entropy_ratio",
                 f"must be in (0, 1], got {self.target_entropy_ratio}", "set agent.target_entropy_ratio=0.7")
        for name in OPTIMIZED:
            for key in (f"{name}_lr", f"{name}_lr_final"):
                value = getattr(self, key)
                _require(value > 0, f"agent.{key}", f"must be positive, got {value}",
                         f"set agent.{key}=3e-4 or another positive number")
            decay = getattr(self, f"{name}_lr_decay")
            if decay is not None:
                _require(decay in LR_DECAYS, f"agent.{name}_lr_decay", f"must be one of {', '.join(LR_DECAYS)} "
                         f"or null, got '{decay}'", f"set agent.{name}_lr_decay=linear")
        _require(self.lr_decay in LR_DECAYS, "agent.lr_decay",
                 f"must be one of {', '.join(LR_DECAYS)}, got '{self.lr_decay}'", "set agent.lr_decay=constant")
        _require(self.lr_decay_ref in ("step", "epoch"), "agent.lr_decay_ref",
                 f"must be step or epoch, got '{self.lr_decay_ref}'", "set agent.lr_decay_ref=step")
        _require(0 < self.gamma <= 1, "agent.gamma", f"must be in (0, 1], got {self.gamma}",
                 "set agent.gamma=0.99 or another value in (0, 1]")
        _require(0 < self.tau <= 1, "agent.tau", f"must be in (0, 1], got {self.tau}",
                 "set agent.tau=0.005 (smoothing) or 1 (hard copy)")
        if isinstance(self.alpha, str):
            _require(self.alpha == "auto", "agent.alpha", f"must be 'auto' or a number, got '{self.alpha}'",
                     "set agent.alpha=auto or e.g. agent.alpha=0.2")
        else:
            _require(self.alpha >= 0, "agent.alpha", f"must be non-negative, got {self.alpha}",
                     "set agent.alpha=auto or e.g. agent.alpha=0.2")
        _require(self.alpha_init > 0, "agent.alpha_init", f"must be positive, got {self.alpha_init}",
                 "set agent.alpha_init=1.0")
        if isinstance(self.target_entropy, str):
            _require(self.target_entropy == "auto", "agent.target_entropy",
                     f"must be 'auto' or a number, got '{self.target_entropy}'",
                     "set agent.target_entropy=auto or a number such as -6")
        _require(self.num_critics >= 1, "agent.num_critics", f"must be at least 1, got {self.num_critics}",
                 "set agent.num_critics=2")
        for key in ("hidden_sizes", "actor_hidden_sizes", "critic_hidden_sizes"):
            sizes = getattr(self, key)
            if sizes is not None:
                _require(len(sizes) > 0 and all(h > 0 for h in sizes), f"agent.{key}",
                         f"must be a non-empty list of positive widths, got {list(sizes)}",
                         f"set agent.{key}=[256,256]")
        _require(self.activation in ACTIVATIONS, "agent.activation",
                 f"must be one of {', '.join(ACTIVATIONS)}, got '{self.activation}'", "set agent.activation=relu")
        _require(self.reward_scale > 0, "agent.reward_scale", f"must be positive, got {self.reward_scale}",
                 "set agent.reward_scale=1")
        _require(self.objective in ("maximize", "minimize"), "agent.objective",
                 f"must be maximize or minimize, got '{self.objective}'", "set agent.objective=maximize")
        if self.max_grad_norm is not None:
            _require(self.max_grad_norm > 0, "agent.max_grad_norm", f"must be positive, got {self.max_grad_norm}",
                     "set agent.max_grad_norm=null (no clipping) or e.g. 10")
        for key in ("policy_update_every", "target_update_every"):
            value = getattr(self, key)
            _require(value > 0, f"agent.{key}", f"must be positive, got {value}", f"set agent.{key}=1")
        self._check_building_blocks()
        self._check_encoder()

    def _check_encoder(self) -> None:
        _require(self.encoder in ENCODER_CHOICES, "agent.encoder",
                 f"must be one of {', '.join(ENCODER_CHOICES)}, got '{self.encoder}'", "set agent.encoder=auto")
        _require(self.feature_dim >= 1, "agent.feature_dim", f"must be positive, got {self.feature_dim}",
                 "set agent.feature_dim=50")
        _require(0 < self.encoder_tau <= 1, "agent.encoder_tau", f"must be in (0, 1], got {self.encoder_tau}",
                 "set agent.encoder_tau=0.05")
        _require(self.augmentation in AUGMENTATIONS, "agent.augmentation",
                 f"must be one of {', '.join(AUGMENTATIONS)}, got '{self.augmentation}'", "set agent.augmentation=shift")

    def _check_building_blocks(self) -> None:
        for key in ("critic_norm", "actor_norm"):
            _require(getattr(self, key) in NORMS, f"agent.{key}",
                     f"must be one of {', '.join(NORMS)}, got '{getattr(self, key)}'", f"set agent.{key}=none")
        _require(0 < self.batch_renorm_momentum <= 1, "agent.batch_renorm_momentum",
                 f"must be in (0, 1], got {self.batch_renorm_momentum}", "set agent.batch_renorm_momentum=0.01")
        _require(self.batch_renorm_warmup >= 0, "agent.batch_renorm_warmup",
                 f"must be non-negative, got {self.batch_renorm_warmup}", "set agent.batch_renorm_warmup=100000")
        _require(self.actor_q in ACTOR_Q, "agent.actor_q", f"must be one of {', '.join(ACTOR_Q)}, got '{self.actor_q}'",
                 "set agent.actor_q=min (SAC) or mean (DroQ)")
        _require(0 <= self.critic_dropout < 1, "agent.critic_dropout", f"must be in [0, 1), got {self.critic_dropout}",
                 "set agent.critic_dropout=0 (or DroQ's 0.01)")
        _require(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas), "agent.adam_betas",
                 f"must be two numbers in [0, 1), got {list(self.adam_betas)}", "set agent.adam_betas=[0.9,0.999]")
        _require(self.reset_every >= 0, "agent.reset_every", f"must be 0 (never) or positive, got {self.reset_every}",
                 "set agent.reset_every=0")
        networks = ("actor", "critic", "value") if self.value_network else ("actor", "critic")
        _require(len(self.reset_networks) > 0 and set(self.reset_networks) <= set(networks), "agent.reset_networks",
                 f"must name some of {', '.join(networks)}, got {list(self.reset_networks)}",
                 "set agent.reset_networks=[actor,critic]")
        _require(set(self.weight_norm) <= set(networks), "agent.weight_norm",
                 f"must name some of {', '.join(networks)} (or none: []), got {list(self.weight_norm)}",
                 "set agent.weight_norm=[critic] (or [] for none)")
        for network in ("critic", "actor"):
            self._check_architecture(network)
        if NORMS[self.critic_norm].batch_statistics:
            _require(not self.target_network, "agent.critic_norm",
                     f"is {self.critic_norm}, whose joint forward pass of current and next state-actions replaces the "
                     "target critics (CrossQ), but agent.target_network is true",
                     "set agent.target_network=false (or use agent=crossq)")
            _require(not self.value_network, "agent.critic_norm",
                     f"is {self.critic_norm}, which does not combine with the 2018 V network "
                     "(agent.value_network=true)",
                     "set agent.value_network=false or agent.critic_norm=none")

    def _check_architecture(self, network: str) -> None:
        key = f"{network}_architecture"
        architecture = getattr(self, key)
        _require(architecture in ARCHITECTURES, f"agent.{key}",
                 f"must be one of {', '.join(ARCHITECTURES)}, got '{architecture}'", f"set agent.{key}=mlp")
        if architecture != "simba":
            return
        sizes_key = f"{network}_hidden_sizes" if getattr(self, f"{network}_hidden_sizes") is not None else "hidden_sizes"
        sizes = list(getattr(self, sizes_key))
        _require(len(set(sizes)) == 1, f"agent.{sizes_key}",
                 f"is {sizes}, but SimBa's residual blocks (agent.{key}=simba) keep one width",
                 f"set agent.{network}_hidden_sizes=[{sizes[0]},{sizes[0]}] (one entry per block)")
        _require(getattr(self, f"{network}_norm") == "none", f"agent.{network}_norm",
                 f"is {getattr(self, f'{network}_norm')}, but SimBa's blocks (agent.{key}=simba) bring their own "
                 "LayerNorm", f"set agent.{network}_norm=none or agent.{key}=mlp")
        if network == "critic":
            _require(self.critic_dropout == 0, "agent.critic_dropout",
                     "is not 0, but dropout goes after the hidden Linear layers of an mlp, not into SimBa's blocks",
                     "set agent.critic_dropout=0 or agent.critic_architecture=mlp")

    @property
    def learns_alpha(self) -> bool:
        return self.alpha == "auto"

    def lr_decay_of(self, name: str) -> str:
        return getattr(self, f"{name}_lr_decay") or self.lr_decay


@dataclass
class BufferConfig:
    # uniform, or proportional prioritized replay (Schaul et al., 2016) on a sum tree.
    type: str = "uniform"
    # Slots; each stores one observation (an episode end uses one extra slot for its final observation).
    capacity: int = 1_000_000
    # n-step returns; they stop at episode ends (no bootstrap past a termination).
    n_step: int = 1
    # Prioritized replay: priority = (|TD error| + priority_eps)^alpha; importance-sampling exponent
    # annealed linearly from beta to 1 over training.
    alpha: float = 0.6
    beta: float = 0.4
    priority_eps: float = 1e-6
    # Where the stored transitions are sampled from: cuda keeps a copy on the GPU and gathers batches
    # there (no host-device copy of batches); auto = cuda when the agent is on a GPU and the buffer fits
    # in half its free memory, else cpu.
    device: str = "auto"

    def __post_init__(self) -> None:
        _require(self.device in ("auto", "cpu", "cuda"), "buffer.device",
                 f"must be auto, cpu or cuda, got '{self.device}'", "set buffer.device=auto")
        _require(self.type in ("uniform", "prioritized"), "buffer.type",
                 f"must be uniform or prioritized, got '{self.type}'", "use buffer=uniform or buffer=prioritized")
        _require(self.capacity > 1, "buffer.capacity", f"must be at least 2, got {self.capacity}",
                 "set buffer.capacity=1_000_000")
        _require(self.n_step >= 1, "buffer.n_step", f"must be at least 1, got {self.n_step}", "set buffer.n_step=1")
        _require(0 <= self.alpha <= 1, "buffer.alpha", f"must be in [0, 1], got {self.alpha}", "set buffer.alpha=0.6")
        _require(0 <= self.beta <= 1, "buffer.beta", f"must be in [0, 1], got {self.beta}", "set buffer.beta=0.4")
        _require(self.priority_eps > 0, "buffer.priority_eps", f"must be positive, got {self.priority_eps}",
                 "set buffer.priority_eps=1e-6")


@dataclass
class ScheduleConfig:
    # Environment steps to train for, over all env.num_envs: transitions, or frames with env.action_repeat
    # (one transition = action_repeat environment steps, as the pixel papers count).
    total_steps: int = 1_000_000
    # Actions are uniform random for the first `start_steps` environment steps (exploration warm-up).
    start_steps: int = 5_000
    # Learning starts after `update_after` environment steps (transitions, unless env.action_repeat > 1).
    update_after: int = 5_000
    # Transitions between updates (environment steps, or agent steps with env.action_repeat), and
    # gradient steps per update: the update-to-data ratio is gradient_steps / update_every.
    update_every: int = 1
    gradient_steps: int = 1
    batch_size: int = 256  # transitions per gradient step
    eval_every: int = 10_000  # environment steps between evaluations (and the end of training)
    eval_episodes: int = 10  # deterministic episodes per evaluation, with fixed seeds
    checkpoint_every: int = 50_000  # environment steps between checkpoints (also at the end and on a signal)
    log_every: int = 1_000  # environment steps between logged training metrics (losses, steps/s)
    # Epochs, for users who think in them: with steps_per_epoch set, `epochs` (if set) gives the total
    # budget and *_every_epochs (if set) the evaluation and checkpoint cadence, in place of the step values.
    steps_per_epoch: Optional[int] = None
    epochs: Optional[int] = None
    eval_every_epochs: Optional[int] = None
    checkpoint_every_epochs: Optional[int] = None

    def __post_init__(self) -> None:
        for key in ("total_steps", "update_every", "gradient_steps", "batch_size", "eval_every",
                    "eval_episodes", "checkpoint_every", "log_every"):
            value = getattr(self, key)
            _require(value > 0, f"schedule.{key}", f"must be positive, got {value}",
                     f"set schedule.{key} to a positive integer")
        for key in ("start_steps", "update_after"):
            value = getattr(self, key)
            _require(value >= 0, f"schedule.{key}", f"must be non-negative, got {value}",
                     f"set schedule.{key}=0 or more")
        for key in ("steps_per_epoch", "epochs", "eval_every_epochs", "checkpoint_every_epochs"):
            value = getattr(self, key)
            if value is not None:
                _require(value > 0, f"schedule.{key}", f"must be positive or null, got {value}",
                         f"set schedule.{key} to a positive integer or null")
                if key != "steps_per_epoch":
                    _require(self.steps_per_epoch is not None, f"schedule.{key}", "needs schedule.steps_per_epoch",
                             "set schedule.steps_per_epoch as well")

    # Derived cadence in environment steps (the config itself is never rewritten).
    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch if self.epochs is not None else self.total_steps

    @property
    def eval_interval(self) -> int:
        return self.eval_every_epochs * self.steps_per_epoch if self.eval_every_epochs is not None else self.eval_every

    @property
    def checkpoint_interval(self) -> int:
        if self.checkpoint_every_epochs is not None:
            return self.checkpoint_every_epochs * self.steps_per_epoch
        return self.checkpoint_every

    @property
    def num_epochs(self) -> Optional[int]:
        return None if self.steps_per_epoch is None else -(-self.steps // self.steps_per_epoch)


@dataclass
class LoggingConfig:
    # W&B mode: offline writes the run under the run directory (upload later with `wandb sync`).
    mode: str = "offline"
    project: str = "sac-runner"  # W&B project
    entity: Optional[str] = None  # W&B entity (team or user); null = your default
    # W&B group: null puts every job of a sweep in a group named after the sweep directory.
    group: Optional[str] = None
    # W&B run name: null names a run after its directory (a sweep job: its number and overrides).
    name: Optional[str] = None
    job_type: str = "train"  # W&B job type
    tags: list[str] = field(default_factory=list)  # W&B tags
    # Rich progress bar and summary table on the terminal.
    progress: bool = True
    # Record one evaluation episode as an MP4 (run_dir/videos/, and W&B) every K evaluations; 0 = never.
    video_every_evals: int = 0
    # TensorBoard event files under run_dir/tensorboard/ (the same keys, x-axis = environment steps):
    # `tensorboard --logdir outputs/runs` shows runs while they train. Needs sac-runner[tensorboard].
    tensorboard: bool = False

    def __post_init__(self) -> None:
        _require(self.mode in ("online", "offline", "disabled"), "logging.mode",
                 f"must be online, offline or disabled, got '{self.mode}'", "set logging.mode=offline")
        _require(self.video_every_evals >= 0, "logging.video_every_evals",
                 f"must be 0 (off) or positive, got {self.video_every_evals}", "set logging.video_every_evals=0")


@dataclass
class CheckpointConfig:
    # Save the replay buffer with the newest checkpoint, so that a resumed run is exact.
    save_buffer: bool = True
    # Keep the newest keep_last step checkpoints (0 keeps all), plus the best one by evaluation.
    keep_last: int = 3
    keep_best: bool = True  # write checkpoints/best.pt, the agent of the best evaluation so far

    def __post_init__(self) -> None:
        _require(self.keep_last >= 0, "checkpoint.keep_last", f"must be 0 (keep all) or more, got {self.keep_last}",
                 "set checkpoint.keep_last=3")


COLLAPSE_ACTIONS = ("warn", "rollback", "stop")


@dataclass
class HealthConfig:
    # Measurements at every evaluation, logged under health/ (docs/health.md): value bias, dormant
    # units, parameter and gradient norms, effective learning rates, entropy against its target,
    # TD-error quantiles. They draw from their own random streams: training is the same with them off.
    enabled: bool = True
    bias_episodes: int = 1         # episodes acting as in training (sampled actions) for the value bias
    batch_size: int = 256          # buffer transitions for dormant units, entropy and TD errors
    dormant_tau: float = 0.025     # a unit is dormant when its normalized activation is at most this
    # Alerts: a console line and a W&B alert when a measurement stays past its threshold for
    # `patience` evaluations in a row (once, until it comes back).
    patience: int = 3
    value_bias_max: float = 0.5    # overestimation: mean(Q - G) above this fraction of mean |G|
    dormant_max: float = 0.3       # fraction of a network's hidden units dormant
    entropy_margin: float = 1.0    # entropy below target_entropy - margin * max(1, |target_entropy|)
    # A collapse: the evaluation return below best - collapse_drop * (best - first evaluation) for
    # `patience` evaluations in a row, with an alert raised meanwhile. warn: say so; rollback: restore
    # the best checkpoint's agent (networks, optimizers, alpha), keeping the buffer and the step;
    # stop: end the run there, its best checkpoint kept. Each rollback also multiplies every learning
    # rate by rollback_lr_factor: restored unchanged, an agent tends to walk into the same failure.
    on_collapse: str = "warn"
    collapse_drop: float = 0.5
    rollback_lr_factor: float = 0.5

    def __post_init__(self) -> None:
        _require(self.on_collapse in COLLAPSE_ACTIONS, "health.on_collapse",
                 f"must be one of {', '.join(COLLAPSE_ACTIONS)}, got '{self.on_collapse}'", "set health.on_collapse=warn")
        for key in ("bias_episodes", "batch_size", "patience"):
            _require(getattr(self, key) >= 1, f"health.{key}", f"must be at least 1, got {getattr(self, key)}",
                     f"set health.{key}={getattr(HealthConfig, key)}")
        for key in ("value_bias_max", "dormant_tau", "entropy_margin", "collapse_drop"):
            _require(getattr(self, key) > 0, f"health.{key}", f"must be positive, got {getattr(self, key)}",
                     f"set health.{key}={getattr(HealthConfig, key)}")
        _require(0 < self.dormant_max <= 1, "health.dormant_max", f"must be in (0, 1], got {self.dormant_max}",
                 "set health.dormant_max=0.3")
        _require(0 < self.rollback_lr_factor <= 1, "health.rollback_lr_factor",
                 f"must be in (0, 1] (1 keeps the learning rates), got {self.rollback_lr_factor}",
                 "set health.rollback_lr_factor=0.5")


@dataclass
class RunConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    seed: int = 0  # seeds Python, NumPy, torch, the environments (env i: seed + i) and the buffer's sampling
    # auto picks cuda when available, else cpu.
    device: str = "auto"
    # torch CPU threads: auto = the usable cores (affinity, cgroup quota, Slurm), shared with the other
    # sac-runner runs on them (run/hardware.py); a number is obeyed.
    threads: str = "auto"
    # A run directory or checkpoint (or `latest`) to continue in place (same directory, W&B run and metrics).
    resume: Optional[str] = None
    # Warm start: a checkpoint (or run directory) whose networks initialise this run's; the
    # optimizers, buffer and counters start fresh (Stable Learning Control's start_policy).
    init_from: Optional[str] = None
    # Stop at the first update with a non-finite loss, Q value, alpha or parameter, keep the last good
    # checkpoint and save the batch (one check per update; its cost is in docs/benchmarks.md).
    nan_guard: bool = True
    # What sac-train returns to a sweeper (Optuna): the final or the best evaluation return.
    sweep_objective: str = "final"

    def __post_init__(self) -> None:
        _require_seed(self.seed)
        _require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device",
                 f"must be auto, cpu or cuda, got '{self.device}'", "set device=auto")
        _require(self.sweep_objective in ("final", "best"), "sweep_objective",
                 f"must be final or best, got '{self.sweep_objective}'", "set sweep_objective=final")
        _require(self.threads == "auto" or (self.threads.isdigit() and int(self.threads) > 0), "threads",
                 f"must be auto or a positive number of threads, got '{self.threads}'", "set threads=auto")
        _require(self.buffer.capacity >= 2 * self.env.num_envs, "buffer.capacity",
                 f"({self.buffer.capacity}) is too small for env.num_envs={self.env.num_envs} (one stream of at "
                 "least 2 slots per environment)", "raise buffer.capacity or lower env.num_envs")
        _require(self.schedule.batch_size <= self.buffer.capacity, "schedule.batch_size",
                 f"({self.schedule.batch_size}) is larger than buffer.capacity ({self.buffer.capacity})",
                 "lower schedule.batch_size or raise buffer.capacity")
        if self.health.on_collapse == "rollback":
            _require(self.checkpoint.keep_best and self.health.enabled, "health.on_collapse",
                     "is rollback, which restores checkpoints/best.pt, but checkpoint.keep_best or health.enabled is "
                     "false", "set checkpoint.keep_best=true and health.enabled=true, or health.on_collapse=warn")
        if self.agent.lr_decay_ref == "epoch":
            _require(self.schedule.steps_per_epoch is not None, "agent.lr_decay_ref",
                     "is epoch but schedule.steps_per_epoch is not set", "set schedule.steps_per_epoch or lr_decay_ref=step")


@dataclass
class EvalConfig:
    """sac-eval: evaluate a checkpoint written by sac-train."""

    # A .pt file, a run directory (its checkpoints/latest.pt) or `latest`; required.
    checkpoint: str = "???"
    episodes: int = 10  # evaluation episodes
    # Act on the policy mean; false samples from the policy.
    deterministic: bool = True
    # Episode i starts from env.reset(seed=seed + i).
    seed: int = 12_345
    device: str = "auto"  # auto, cpu or cuda: where the policy runs
    # Evaluate on another environment id with the same observation and action spaces (a variant of the
    # task); null = the environment the checkpoint was trained on, with its env.kwargs.
    env_id: Optional[str] = None
    # Record every episode as an MP4 under the evaluation's output directory.
    video: bool = False
    # W&B for the evaluation (results and videos); disabled by default.
    logging: LoggingConfig = field(default_factory=lambda: LoggingConfig(mode="disabled", progress=False))

    def __post_init__(self) -> None:
        _require(self.episodes > 0, "episodes", f"must be positive, got {self.episodes}", "set episodes=10")
        _require_seed(self.seed)


@dataclass
class ExportConfig:
    """sac-export: write a checkpoint's deterministic policy as a standalone file."""

    # A .pt file, a run directory (its checkpoints/latest.pt) or `latest`; required.
    checkpoint: str = "???"
    # torchscript (torch.jit.load) or onnx (onnxruntime).
    format: str = "torchscript"
    # The file to write; null writes policy.pt / policy.onnx in the export's output directory.
    output: Optional[str] = None

    def __post_init__(self) -> None:
        _require(self.format in ("torchscript", "onnx"), "format", f"must be torchscript or onnx, got '{self.format}'",
                 "set format=torchscript or format=onnx")
