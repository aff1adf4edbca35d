"""Soft Actor-Critic (Haarnoja et al., 2018; 2019), continuous actions.

`SAC.update(batch)` is the whole algorithm for one gradient step, in the papers' order and names.
The 2019 variant (default):

    y        = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s')),  a' ~ pi(.|s')
    J_Q      = sum_i 0.5 * E[(Q_i(s, a) - y)^2]
    J_pi     = E[alpha * log pi(a|s) - min_i Q_i(s, a)],                                     a ~ pi(.|s)
    J_alpha  = E[-log(alpha) * (log pi(a|s) + target_entropy)]
    theta'   <- tau * theta + (1 - tau) * theta'

The 2018 variant (value_network=true) learns V(s) and bootstraps Q from its target V'(s'):

    y        = r + gamma * (1 - terminated) * V'(s')
    J_V      = 0.5 * E[(V(s) - (min_i Q_i(s, a) - alpha * log pi(a|s)))^2],                  a ~ pi(.|s)
    psi'     <- tau * psi + (1 - tau) * psi'

`r` is the environment's signal times reward_scale, negated when the objective is to minimize a cost.

`update` returns the step's metrics (scalar tensors, read only when logged) and each sample's TD
error |Q - y| (the replay buffer's priorities). Its two pieces, `_critic_update` (J_Q, J_V) and
`_policy_update` (J_pi, J_alpha), take tensors only, so agent.compile can compile them and replay
them as CUDA graphs (compilation.py); `update` decides in Python which run, and the targets' step.
`DiscreteSAC` (discrete_sac.py) is the same algorithm for |A| discrete actions (Christodoulou, 2019).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from sac_runner.algo.blocks import ENCODERS
from sac_runner.algo.compilation import Accelerated, resolve_compile_mode, start_compiling_afresh
from sac_runner.algo.encoders import EncodedActor, EncodedCritic, optimized_parameters, random_shift
from sac_runner.algo.functional_step import FunctionalStep
from sac_runner.algo.lr_schedule import decayed_lr
from sac_runner.algo.layers import batch_statistics
from sac_runner.algo.networks import (Body, CriticEnsemble, SquashedGaussianActor, ValueNetwork, project_to_unit_norm,
                                      reinitialize, unit_norm_weights)
from sac_runner.algo.normalization import ObservationNormalizer
from sac_runner.algo.replay_buffer import Batch
from sac_runner.config import AgentConfig


class UpdateResult(NamedTuple):
    metrics: dict[str, torch.Tensor]  # flat, namespaced (train/...), scalar tensors
    td_error: torch.Tensor            # (B,) max_i |Q_i(s, a) - y| per sample, for replay priorities


@torch.no_grad()
def polyak_update(target: list[torch.Tensor], online: list[torch.Tensor], tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, in place (tau = 1 is a hard copy). Without autograd:
    recorded, each step would make the targets require gradients and chain one more node onto their
    history (a leak of 3.7 KB per update for a 2x256 SAC: gigabytes over a million updates)."""
    torch._foreach_lerp_(target, online, tau)


def soft_value(q: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """V(s) = min_i Q_i(s, a) - alpha * log pi(a|s), for q of shape (num_critics, B) and a ~ pi(.|s)."""
    return q.min(dim=0).values - alpha * log_prob


def critics_for_the_actor(q: torch.Tensor, actor_q: str) -> torch.Tensor:
    """What the actor's loss maximizes of the critics' Q_i, q of shape (num_critics, ...): their min
    (SAC) or their mean (agent.actor_q=mean: REDQ, DroQ)."""
    return q.min(dim=0).values if actor_q == "min" else q.mean(dim=0)


def soft_bellman_target(reward: torch.Tensor, terminated: torch.Tensor, next_value: torch.Tensor,
                        gamma: float | torch.Tensor) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * V(s'), with V(s') the soft value under the target critics (2019)
    or the target V network (2018). A truncated episode (time limit) has terminated = 0 and bootstraps."""
    return reward + gamma * (1.0 - terminated) * next_value


@contextmanager
def frozen(module: nn.Module):
    """No gradients for `module`'s weights inside the block (the actor loss needs dQ/da, not dQ/dtheta)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Temperature(nn.Module):
    """log(alpha), held as a module's parameter so that its step runs as the networks' steps do."""

    def __init__(self, log_alpha: float, learns: bool):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(log_alpha, dtype=torch.float32), requires_grad=learns)


def adam(params, lr: float, device: torch.device, graph_safe: bool = False,
         betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam with its fused implementation: one kernel for all tensors (PyTorch's CPU default is one
    tensor at a time; fused measured 5.9 -> 5.5 ms per HalfCheetah update on 2 CPU cores).

    graph_safe (agent.compile on): the learning rate is a tensor on the device, changed in place, and on
    CUDA the step counts stay on the GPU (capturable), so a compiled or captured step reads today's values."""
    if not graph_safe:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), betas=betas, fused=True,
                            capturable=device.type == "cuda")


def optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state dict with plain-float learning rates, loadable whatever agent.compile is."""
    state = optimizer.state_dict()
    for group in state["param_groups"]:
        group["lr"] = float(group["lr"])
    return state


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a saved state, keeping this optimizer's own implementation (its learning-rate tensor, fused,
    capturable), which a state saved under another agent.compile or device would overwrite."""
    own = [{key: group[key] for key in ("lr", "fused", "capturable", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, own):
        if isinstance(kept["lr"], torch.Tensor):
            kept["lr"].fill_(float(group["lr"]))  # the saved rate, in this optimizer's tensor
        else:
            kept["lr"] = float(group["lr"])
        group.update(kept)


def build_encoder(cfg: AgentConfig, obs_shape: tuple[int, int, int]) -> nn.Module:
    """The image encoder agent.encoder names (auto: drq) for observations of obs_shape (C, H, W)."""
    return ENCODERS["drq" if cfg.encoder == "auto" else cfg.encoder](obs_shape, cfg.feature_dim)


class SAC:
    def __init__(self, obs_dim: int | tuple[int, ...], action_dim: int, cfg: AgentConfig, device: torch.device, *,
                 normalize_obs: bool = False, normalize_obs_clip: float = 10.0):
        """obs_dim: the size of a flat observation, or the shape (C, H, W) of an image observation (uint8
        frames, through a convolutional encoder: encoders.py)."""
        self.cfg = cfg
        self.obs_shape = obs_shape = (obs_dim,) if isinstance(obs_dim, int) else tuple(obs_dim)
        # Images: the critics' encoder (agent.encoder), whose features the networks below take in place of s.
        self.encoder = build_encoder(cfg, obs_shape).to(device) if len(obs_shape) == 3 else None
        obs_dim = self.encoder.out_dim if self.encoder is not None else obs_shape[0]
        self.augment = random_shift if cfg.augmentation == "shift" else None
        self.normalizer = ObservationNormalizer(obs_dim, normalize_obs and self.encoder is None,
                                                normalize_obs_clip).to(device)
        self.device = device
        self.gamma = cfg.gamma
        self.tau = cfg.tau
        # Signal -> reward: scaled, and negated when the signal is a cost to minimize.
        self.reward_scale = cfg.reward_scale * (1.0 if cfg.objective == "maximize" else -1.0)
        self.policy_update_every = cfg.policy_update_every
        self.policy_steps_when_due = cfg.policy_update_every if cfg.policy_update_catch_up else 1
        self.target_update_every = cfg.target_update_every
        self.num_updates = 0
        # Every learning rate times this factor: health.on_collapse=rollback lowers it (1 otherwise).
        self.lr_scale = 1.0

        actor_sizes = cfg.actor_hidden_sizes or cfg.hidden_sizes
        critic_sizes = cfg.critic_hidden_sizes or cfg.hidden_sizes
        renorm = dict(renorm_momentum=cfg.batch_renorm_momentum, renorm_warmup=cfg.batch_renorm_warmup)
        self.actor_body = Body(cfg.actor_norm, 0.0, architecture=cfg.actor_architecture, **renorm)
        self.critic_body = Body(cfg.critic_norm, cfg.critic_dropout, architecture=cfg.critic_architecture, **renorm)
        self.actor, self.critic = self._actor_and_critic(obs_dim, action_dim, actor_sizes, critic_sizes)
        if self.encoder is not None:  # the critics train the encoder; the actor reads it detached
            self.actor, self.critic = EncodedActor(self.encoder, self.actor), EncodedCritic(self.encoder, self.critic)
        self.actor.to(device)
        self.critic.to(device)
        self.compile_mode = resolve_compile_mode(cfg.compile, device)
        optimizer = partial(adam, device=device, graph_safe=self.compile_mode != "off", betas=tuple(cfg.adam_betas))
        self.actor_optimizer = optimizer(optimized_parameters(self.actor), cfg.actor_lr)
        self.critic_optimizer = optimizer(self.critic.parameters(), cfg.critic_lr)

        # The bootstrap comes from target critics (2019) or from a target V network (2018); without
        # target networks (agent.target_network=false) from the online ones, with gradients stopped.
        self.value: ValueNetwork | None = None
        self.value_optimizer = None
        if cfg.value_network:
            if self.encoder is not None:
                raise ValueError("agent.value_network=true (the 2018 V network) does not take image observations; "
                                 "set agent.value_network=false")
            self.value = ValueNetwork(obs_dim, critic_sizes, cfg.activation, self.critic_body).to(device)
            self.value_optimizer = optimizer(self.value.parameters(), cfg.value_lr)
        # Weight normalization (agent.weight_norm): these networks' hidden weights stay at unit norm.
        self._unit_weights = {name: unit_norm_weights(getattr(self, name)) for name in cfg.weight_norm}
        for weights in self._unit_weights.values():
            project_to_unit_norm(weights)
        bootstrap: nn.Module = self.critic if self.value is None else self.value
        # Each target moves toward its online network at its rate: tau, and agent.encoder_tau for an encoder.
        self._target_groups: list[tuple[list[torch.Tensor], list[torch.Tensor], float]] = []
        if cfg.target_network:
            self.target = copy.deepcopy(bootstrap).requires_grad_(False)
            self._target_params, self._bootstrap_params = list(self.target.parameters()), list(bootstrap.parameters())
            if self.encoder is not None:
                self._target_groups = [(list(self.target.head.parameters()), list(bootstrap.head.parameters()), self.tau),
                                       (list(self.target.encoder.parameters()), list(self.encoder.parameters()),
                                        cfg.encoder_tau)]
            else:
                self._target_groups = [(self._target_params, self._bootstrap_params, self.tau)]
        else:
            self.target, self._target_params, self._bootstrap_params = bootstrap, [], []
        # CrossQ: critics normalized with batch statistics (Batch Renormalization) see current and next
        # state-actions in one forward pass.
        self.joint_forward = self.critic_body.normalization.batch_statistics

        self.target_entropy = float(self._auto_target_entropy(action_dim) if cfg.target_entropy == "auto"
                                    else cfg.target_entropy)
        self.learns_alpha = cfg.learns_alpha
        initial_alpha = cfg.alpha_init if self.learns_alpha else float(cfg.alpha)
        # log(0) for a fixed alpha of 0 (no entropy bonus) is -inf; exp(-inf) = 0 is exact.
        self.temperature = Temperature(np.log(initial_alpha) if initial_alpha > 0 else -np.inf,
                                       self.learns_alpha).to(device)
        self.alpha_optimizer = optimizer([self.log_alpha], cfg.alpha_lr) if self.learns_alpha else None

        # The update's pieces and the policy, run as agent.compile says (algo/compilation.py).
        if self.compile_mode != "off":
            start_compiling_afresh()
        self._learn_q = Accelerated(self._critic_update, self.compile_mode, "critic update", device)
        self._learn_pi = Accelerated(self._policy_update, self.compile_mode, "policy update", device)
        self._learn_q_then_pi = Accelerated(self._critic_then_policy_update, self.compile_mode,
                                            "critic and policy update", device)
        self._policy = Accelerated(self._policy_action, self._acting_mode(), "policy", device)
        self._update_pieces = (self._learn_q, self._learn_pi, self._learn_q_then_pi)
        # agent.compile=compile: each optimizer step a function of tensors (functional_step.py), so that a
        # piece compiles to one program; eager and CUDA graphs step with loss.backward() and the optimizer.
        self.functional = self.compile_mode == "compile"
        trained = {"critic": self.critic, "actor": self.actor, "value": self.value, "alpha": self.temperature}
        self._functional_steps = {name: FunctionalStep(trained[name], optimizer)
                                  for name, optimizer in self.optimizers.items() if self.functional}

    def _actor_and_critic(self, obs_dim: int, action_dim: int, actor_sizes: list[int],
                          critic_sizes: list[int]) -> tuple[nn.Module, nn.Module]:
        return (SquashedGaussianActor(obs_dim, action_dim, actor_sizes, self.cfg.activation, self.actor_body),
                CriticEnsemble(obs_dim, action_dim, critic_sizes, self.cfg.num_critics, self.cfg.activation,
                               self.critic_body))

    def _auto_target_entropy(self, action_dim: int) -> float:
        return -action_dim  # the heuristic of Haarnoja et al. (2019)

    def _acting_mode(self) -> str:
        return self.compile_mode

    @property
    def compile_seconds(self) -> float:
        """Time the first calls spent compiling (and capturing CUDA graphs); 0 with agent.compile=off."""
        return sum(piece.compile_seconds for piece in (*self._update_pieces, self._policy))

    @property
    def log_alpha(self) -> torch.Tensor:
        return self.temperature.log_alpha

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        found = {"actor": self.actor_optimizer, "critic": self.critic_optimizer,
                 "alpha": self.alpha_optimizer, "value": self.value_optimizer}
        return {name: opt for name, opt in found.items() if opt is not None}

    @property
    def decays_lr(self) -> bool:
        return any(self.cfg.lr_decay_of(name) != "constant" for name in self.optimizers)

    def set_lr_progress(self, progress: float) -> None:
        """Set every learning rate for a training progress in [0, 1] (by steps or by epochs), times lr_scale."""
        for name, optimizer in self.optimizers.items():
            lr = self.lr_scale * decayed_lr(getattr(self.cfg, f"{name}_lr"), getattr(self.cfg, f"{name}_lr_final"),
                                            self.cfg.lr_decay_of(name), progress)
            for group in optimizer.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(lr)  # in place: compiled steps and CUDA graphs read this tensor
                else:
                    group["lr"] = lr

    def learning_rates(self) -> dict[str, float]:
        return {name: float(optimizer.param_groups[0]["lr"]) for name, optimizer in self.optimizers.items()}

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action in [-1, 1]^d for one observation (or a batch of them)."""
        action = self._policy(self.as_obs(obs), deterministic).cpu().numpy()
        return action[0] if self.encoder is not None and np.ndim(obs) == len(self.obs_shape) else action

    def as_obs(self, obs: np.ndarray) -> torch.Tensor:
        """Observations as the networks take them: float32, or the uint8 frames an encoder scales itself
        (one image observation as a batch of one: convolutions would read (C, H, W) as unbatched)."""
        if self.encoder is None:
            return torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return torch.as_tensor(obs, device=self.device).reshape(-1, *self.obs_shape)

    def _policy_action(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        obs = self.normalizer(obs)
        return self.actor.deterministic(obs) if deterministic else self.actor.sample(obs)[0]

    def _step(self, name: str, loss_fn: Callable[[], tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, Any]:
        """One optimizer step of `name` (actor, critic, value, alpha) on the loss `loss_fn()` computes with
        its current parameters; returns the loss (detached) and what else loss_fn returned."""
        if self.functional:
            loss, aux = self._functional_steps[name](loss_fn, self.cfg.max_grad_norm)
        else:
            loss, aux = loss_fn()
            optimizer = getattr(self, f"{name}_optimizer")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], self.cfg.max_grad_norm)
            optimizer.step()
        if name in self._unit_weights:
            project_to_unit_norm(self._unit_weights[name])
        return loss.detach(), aux

    def update(self, batch: Batch) -> UpdateResult:
        """One gradient step: critics (and V), then actor and temperature when due, then targets when due.

        The pieces are functions of tensors only (`_critic_update`, `_policy_update`), which
        agent.compile runs compiled or replays as CUDA graphs; which pieces run is decided here."""
        self.num_updates += 1
        for step in self._functional_steps.values():
            if step.state is None:
                step.prepare()
        if self.augment is not None:  # DrQ: each observation shifted independently, on the training device
            batch = batch._replace(obs=self.augment(batch.obs), next_obs=self.augment(batch.next_obs))
        with torch.no_grad() if self.functional else nullcontext():  # gradients come from torch.func only
            if self.functional and self._policy_update_due() and self.policy_steps_when_due == 1:
                metrics, td_error = self._learn_q_then_pi(*batch)  # one compiled program for the whole step
            else:
                metrics, td_error = self._learn_q(*batch)
                if self._policy_update_due():
                    for _ in range(self.policy_steps_when_due):
                        metrics.update(self._learn_pi(batch.obs))
        metrics["train/alpha"] = self.alpha
        if self._target_params and self.num_updates % self.target_update_every == 0:
            for target, online, rate in self._target_groups:
                polyak_update(target, online, rate)
        if self.cfg.reset_every and self.num_updates % self.cfg.reset_every == 0:
            self.reset(self.cfg.reset_networks)
        return UpdateResult(metrics, td_error)

    def _critic_then_policy_update(self, *batch: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The critics' piece, then the actor's and the temperature's on the same observations: agent.compile=
        compile compiles the two as one program when the actor's step is due once."""
        metrics, td_error = self._critic_update(*batch)
        return {**metrics, **self._policy_update(batch[0])}, td_error

    def reset(self, names: list[str]) -> None:
        """Resets (Nikishin et al., 2022): the named networks re-initialized in place, their optimizer
        state cleared and their target network (if any) copied from them; buffer and alpha kept."""
        for name in names:
            network: nn.Module = getattr(self, name)
            # The actor's encoder is the critics': resetting the actor leaves it (and its target) alone.
            reinitialize(network.head if isinstance(network, EncodedActor) else network)
            if name in self._unit_weights:
                project_to_unit_norm(self._unit_weights[name])
            getattr(self, f"{name}_optimizer").state.clear()
            if name in self._functional_steps:
                self._functional_steps[name].state = None
            bootstrap = self.critic if self.value is None else self.value
            if self._target_params and network is bootstrap:
                polyak_update(self._target_params, self._bootstrap_params, 1.0)  # a copy (lerp's weight 1 is exact)
        for piece in self._update_pieces:
            piece.reset()  # captured CUDA graphs read the optimizers' cleared state

    def _critic_update(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor,
                       terminated: torch.Tensor, discount: torch.Tensor | None,
                       weights: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The critics' step (and V's): the metrics and each sample's TD error."""
        obs, next_obs = self.normalizer(obs), self.normalizer(next_obs)  # raw in the buffer: today's statistics
        reward = self.reward_scale * reward
        gamma = self.gamma if discount is None else discount  # gamma^n for n-step returns
        alpha = self.alpha

        # Critic: regress every Q_i onto the soft Bellman target, bootstrapped from the target critics
        # (2019) or from the target V network (2018); y carries no gradient.
        if self.joint_forward:
            def critic_loss():  # CrossQ: Q(s, a) and V(s') from one forward pass of the critics
                q, next_value = self._joint_q(obs, action, next_obs, alpha)
                y = soft_bellman_target(reward, terminated, next_value, gamma)
                return self._critic_loss(q, y, weights), (q.detach(), y)
        else:
            with torch.no_grad():
                y = soft_bellman_target(reward, terminated, self._bootstrap_value(next_obs, alpha), gamma)

            def critic_loss():
                q = self._q_taken(obs, action)
                return self._critic_loss(q, y, weights), (q.detach(), y)
        loss, (q, y) = self._step("critic", critic_loss)
        td_error = (q - y).abs().max(dim=0).values
        metrics = {"train/critic_loss": loss, "train/q_mean": q.mean(), "train/target_q_mean": y.mean()}

        # Value (2018 variant): regress V(s) onto the soft value E_a~pi[min_i Q_i(s, a) - alpha * log pi(a|s)].
        if self.value is not None:
            with torch.no_grad():
                v_target = self._soft_value(obs, alpha, self.critic)
            metrics.update(self._value_step(obs, v_target))
        return metrics, td_error

    def _policy_update(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The actor's step, then the temperature's (both with alpha as it was before them)."""
        obs = self.normalizer(obs)
        if self.encoder is not None:  # encoded once for the actor and the frozen critics: neither trains it
            with torch.no_grad():
                obs = self.encoder(obs)
        alpha = self.alpha

        def actor_loss():
            with batch_statistics(self.actor):  # the critics keep their running statistics (CrossQ)
                return self._actor_loss(obs, alpha)
        actor_loss, log_prob = self._step("actor", actor_loss)
        self._temperature_step(log_prob)
        return {"train/actor_loss": actor_loss.detach(), "train/entropy": -log_prob.mean()}

    def _bootstrap_value(self, next_obs: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """V(s') of the target: the soft value under the target critics (2019), or the target V (2018)."""
        return self._soft_value(next_obs, alpha, self.target) if self.value is None else self.target(next_obs)

    # ---- what depends on the action type (discrete_sac.py has the other kind) ---------------------
    def _soft_value(self, obs: torch.Tensor, alpha: torch.Tensor, critic: nn.Module) -> torch.Tensor:
        """V(s) = min_i Q_i(s, a) - alpha * log pi(a|s), a ~ pi(.|s), with `critic` (online or target)."""
        action, log_prob = self.actor.sample(obs)
        return soft_value(critic(obs, action), log_prob, alpha)

    def _q_taken(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q_i(s, a) of every critic for the actions taken, (num_critics, B)."""
        return self.critic(obs, action)

    def _joint_q(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor,
                 alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CrossQ: Q_i(s, a) and the soft value of s' from one forward pass of the critics over the
        concatenated batch [(s, a); (s', a')], in batch-statistics mode, so that Batch Renormalization
        normalizes both halves with one statistic. The s' half is detached (no target network)."""
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(next_obs)  # the actor's running statistics
        with batch_statistics(self.critic):
            q, next_q = self.critic(torch.cat([obs, next_obs]), torch.cat([action, next_action])).chunk(2, dim=1)
        return q, soft_value(next_q.detach(), next_log_prob, alpha)

    def _actor_loss(self, obs: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """J_pi = E[alpha * log pi(a|s) - min_i Q_i(s, a)] with a ~ pi reparameterised (mean_i with
        agent.actor_q=mean); and log pi (detached)."""
        action, log_prob = self.actor.sample(obs)
        with self._frozen(self.critic):
            q_pi = critics_for_the_actor(self.critic(obs, action), self.cfg.actor_q)
        return (alpha * log_prob - q_pi).mean(), log_prob.detach()

    # ---- the steps both action types share -------------------------------------------------------
    def _critic_loss(self, q: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """J_Q = sum_i 0.5 * E[w * (Q_i(s, a) - y)^2] for q of shape (num_critics, B); w = 1 unless prioritized."""
        squared_error = (q - y) ** 2
        if weights is not None:  # importance-sampling weights of prioritized replay
            squared_error = squared_error * weights
        return 0.5 * squared_error.mean(dim=1).sum()

    def _value_step(self, obs: torch.Tensor, v_target: torch.Tensor) -> dict[str, torch.Tensor]:
        """J_V = 0.5 * E[(V(s) - v_target)^2] (2018 variant)."""
        value_loss, _ = self._step("value", lambda: (0.5 * ((self.value(obs) - v_target) ** 2).mean(), ()))
        return {"train/value_loss": value_loss}

    def _frozen(self, module: nn.Module):
        """No weight gradients for `module` (eager: the actor loss needs dQ/da only); the functional step
        differentiates the trained parameters alone anyway."""
        return nullcontext() if self.functional else frozen(module)

    def _policy_update_due(self) -> bool:
        return self.num_updates % self.policy_update_every == 0

    def _temperature_step(self, log_prob: torch.Tensor) -> None:
        """J_alpha = E[-log(alpha) * (log pi + target_entropy)]: alpha rises when the entropy -log pi
        is below target and falls when above."""
        if self.alpha_optimizer is not None:
            self._step("alpha", lambda: (-(self.log_alpha * (log_prob + self.target_entropy)).mean(), ()))

    # ---- what the health measurements read (run/health.py); nothing here changes the agent -----------
    @torch.no_grad()
    def sample_with_log_prob(self, obs: np.ndarray) -> tuple[np.ndarray, float]:
        """An action drawn from pi(.|s) as in training, for one observation, and log pi(a|s)."""
        action, log_prob = self._sample_with_log_prob(self.normalizer(self.as_obs(obs)))
        if self.encoder is not None:  # one observation, as a batch of one
            action, log_prob = action[0], log_prob[0]
        return action.cpu().numpy(), float(log_prob)

    def _sample_with_log_prob(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor.sample(obs)

    @torch.no_grad()
    def q_estimate(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min_i Q_i(s, a) for raw observations: the value the target and the actor act on, (B,)."""
        return self._q_taken(self.normalizer(obs), action).min(dim=0).values

    @torch.no_grad()
    def state_value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) as the agent bootstraps it, from its online networks: the soft value, or the 2018 V network."""
        obs = self.normalizer(obs)
        return self._soft_value(obs, self.alpha, self.critic) if self.value is None else self.value(obs)

    @torch.no_grad()
    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """The policy's entropy -E[log pi(a|s)] at these states (one sampled action each)."""
        return -self.actor.sample(self.normalizer(obs))[1].mean()

    @torch.no_grad()
    def td_errors(self, batch: Batch) -> torch.Tensor:
        """max_i |Q_i(s, a) - y| per transition, with the networks as they act (running statistics), nothing updated."""
        obs, next_obs = self.normalizer(batch.obs), self.normalizer(batch.next_obs)
        next_value = self._bootstrap_value(next_obs, self.alpha)
        gamma = self.gamma if batch.discount is None else batch.discount
        y = soft_bellman_target(self.reward_scale * batch.reward, batch.terminated, next_value, gamma)
        return (self._q_taken(obs, batch.action) - y).abs().max(dim=0).values

    # ---- checkpointing: plain state dicts only ---------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "target": self.target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "num_updates": self.num_updates,
            "lr_scale": self.lr_scale,
            "normalizer": self.normalizer.state_dict(),
        }
        if self.value is not None:
            state["value"] = self.value.state_dict()
        for name, optimizer in self.optimizers.items():
            state[f"{name}_optimizer"] = optimizer_state(optimizer)
        return state

    def load_networks(self, state: dict) -> None:
        """The networks and observation statistics only (a warm start); optimizers and alpha stay fresh."""
        self.actor.load_state_dict(state["actor"])
        self.normalizer.load_state_dict(state["normalizer"])
        self.critic.load_state_dict(state["critic"])
        if self.value is not None:
            self.value.load_state_dict(state["value"])
        self.target.load_state_dict(state["target"])

    def load_state_dict(self, state: dict) -> None:
        self.load_networks(state)
        for name, optimizer in self.optimizers.items():
            load_optimizer_state(optimizer, state[f"{name}_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.num_updates = int(state["num_updates"])
        self.lr_scale = float(state.get("lr_scale", 1.0))  # absent from checkpoints before health rollbacks
        for step in self._functional_steps.values():
            step.state = None  # the loaded optimizers hold new moment tensors
        for piece in self._update_pieces:
            piece.reset()  # captured CUDA graphs read the optimizers' replaced state tensors

    def roll_back_to(self, state: dict, lr_factor: float) -> None:
        """health.on_collapse=rollback: the networks, optimizers and alpha of an earlier `state`. The update
        counter goes on (policy delays and resets follow the step) and every learning rate is multiplied
        by lr_factor: restored unchanged, an agent tends to walk into the same failure."""
        num_updates, lr_scale = self.num_updates, self.lr_scale * lr_factor
        self.load_state_dict(state)
        self.num_updates, self.lr_scale = num_updates, lr_scale
