"""Why a run is failing, while it runs (health.* keys; docs/health.md).

At every evaluation `HealthMonitor.measure` takes the measurements of algo/health.py (value bias on
episodes acting as in training, dormant units, norms, effective learning rates, entropy against its
target, TD-error quantiles on a batch from the buffer), logged under health/. It draws from its own
random streams and restores torch's, so a run trains the same with health.enabled=false.

`HealthMonitor.check` turns them into alerts: a measurement past its threshold for health.patience
evaluations in a row raises one alert (a console line, a W&B alert, a line in alerts.jsonl) saying
what it means and what users typically change; it is raised again only after it came back.
`HealthMonitor.collapsed` says when the evaluation return has stayed far below its best for
health.patience evaluations with an alert raised meanwhile; the loop then warns, rolls back to the
best checkpoint's agent or stops, as health.on_collapse says.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
import torch

from sac_runner.algo.health import (dormant_fraction, effective_learning_rate, gradient_norm, hidden_activations,
                                    parameter_norm, soft_returns, value_bias)
from sac_runner.algo.discrete_sac import DiscreteSAC
from sac_runner.algo.networks import unit_norm_weights
from sac_runner.algo.replay_buffer import ReplayBuffer
from sac_runner.algo.sac import SAC
from sac_runner.config import HealthConfig

log = logging.getLogger(__name__)

HEALTH_SEED_OFFSET = 2_000_000  # the bias episodes' seeds and the batch draws: apart from training's and evaluation's
TD_QUANTILES = (50, 90, 99)


@dataclass
class Alert:
    step: int
    kind: str   # overestimation, dormant_<network>, entropy, collapse, rollback, stop
    title: str  # short (a W&B alert title: under 64 characters)
    text: str   # what it means and what to change

    def record(self) -> dict:
        return asdict(self)


class HealthMonitor:
    def __init__(self, cfg: HealthConfig, seed: int):
        self.cfg = cfg
        self.seed = seed + HEALTH_SEED_OFFSET
        self.rng = np.random.default_rng(self.seed)
        self.streaks: dict[str, list[float]] = {}  # a condition's values over its current run of evaluations
        self.raised: set[str] = set()                # alerts raised whose condition still holds
        self.alert_steps: list[int] = []             # when alerts were raised
        self.first_return: float | None = None       # the first evaluation's (objective-signed) return
        self.below: list[int] = []                   # the evaluations in a row far below the best
        self.rollbacks = 0

    # ---- measurements ----------------------------------------------------------------------------------
    def measure(self, agent: SAC, buffer: ReplayBuffer, env: gym.Env) -> dict[str, float]:
        devices = [agent.device] if agent.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            try:
                metrics = self._value_bias(agent, env)
            except Exception as error:  # a measurement never stops a run; a broken environment is training's to count
                log.warning("value bias not measured: the environment raised in step (%s: %s)", type(error).__name__,
                            str(error).splitlines()[0] if str(error) else "")
                metrics = {}
            if len(buffer) > 0:
                metrics.update(self._on_a_batch(agent, buffer))
        for name in agent.optimizers:
            if name == "alpha":
                continue
            network = getattr(agent, name)
            metrics[f"health/param_norm_{name}"] = parameter_norm(network)
            metrics[f"health/grad_norm_{name}"] = gradient_norm(network)
            if self._scale_free(agent, name):
                lr = float(agent.optimizers[name].param_groups[0]["lr"])
                metrics[f"health/effective_lr_{name}"] = effective_learning_rate(lr, unit_norm_weights(network))
        return metrics

    def _value_bias(self, agent: SAC, env: gym.Env) -> dict[str, float]:
        """min_i Q_i(s_t, a_t) against the soft return G_t over health.bias_episodes episodes."""
        estimates, returns = [], []
        alpha = float(agent.alpha)
        for episode in range(self.cfg.bias_episodes):
            obs, _ = env.reset(seed=(self.seed + episode) % 2**32)
            states, actions, rewards, log_probs, done, terminated = [], [], [], [], False, False
            while not done:
                action, log_prob = agent.sample_with_log_prob(obs)
                states.append(obs)
                actions.append(action)
                log_probs.append(log_prob)
                obs, reward, terminated, truncated, _ = env.step(action)
                rewards.append(agent.reward_scale * float(reward))
                done = terminated or truncated
            as_tensor = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32, device=agent.device)  # noqa: E731
            bootstrap = 0.0 if terminated else float(agent.state_value(as_tensor(obs)[None])[0])
            returns.append(soft_returns(np.asarray(rewards), np.asarray(log_probs), alpha, agent.gamma, bootstrap))
            estimates.append(agent.q_estimate(as_tensor(states), as_tensor(actions)).cpu().numpy())
        bias, relative = value_bias(np.concatenate(estimates), np.concatenate(returns))
        return {"health/value_bias": bias, "health/value_bias_relative": relative,
                "health/soft_return_mean": float(np.mean(np.concatenate(returns)))}

    def _on_a_batch(self, agent: SAC, buffer: ReplayBuffer) -> dict[str, float]:
        batch = buffer.inspection_batch(self.cfg.batch_size, self.rng)
        obs = agent.normalizer(batch.obs)
        critic_inputs = (obs,) if isinstance(agent, DiscreteSAC) else (obs, batch.action)
        actor_input = agent.actor.features(obs) if agent.encoder is not None else obs  # an encoder's features
        metrics = {"health/dormant_actor": dormant_fraction(hidden_activations(agent.actor.net, actor_input),
                                                            self.cfg.dormant_tau),
                   "health/dormant_critic": dormant_fraction(hidden_activations(agent.critic, *critic_inputs),
                                                             self.cfg.dormant_tau)}
        if agent.value is not None:
            metrics["health/dormant_value"] = dormant_fraction(hidden_activations(agent.value, obs), self.cfg.dormant_tau)
        metrics["health/entropy"] = float(agent.entropy(batch.obs))
        metrics["health/target_entropy"] = float(agent.target_entropy)
        td = agent.td_errors(batch).cpu().numpy()
        metrics.update({f"health/td_error_p{q}": float(np.percentile(td, q)) for q in TD_QUANTILES})
        return metrics

    @staticmethod
    def _scale_free(agent: SAC, name: str) -> bool:
        """Whether the network's hidden units are normalized after their Linear (so that lr / ||w||^2 is the
        step that matters): a norm layer, or weight normalization."""
        body = agent.actor_body if name == "actor" else agent.critic_body
        return body.normalization.normalizes or name in agent.cfg.weight_norm

    # ---- alerts -------------------------------------------------------------------------------------
    def check(self, step: int, metrics: dict[str, float], learns_alpha: bool) -> list[Alert]:
        """The alerts these measurements raise (each once per stretch past its threshold)."""
        cfg, alerts = self.cfg, []
        relative = metrics.get("health/value_bias_relative", math.nan)
        n = cfg.patience
        # Not while it falls: an untrained critic (Q near 0 against negative returns) reads as +100% and
        # shrinks as it catches up with the returns.
        if self._watch("overestimation", relative > cfg.value_bias_max, relative, unless_falling=True):
            alerts.append(Alert(step, "overestimation", "critic overestimates", (
                f"value bias {_percent(relative)} of the return scale for {_evaluations(n)}"
                f"{_trend(self.streaks['overestimation'])}: the critic overestimates; try a lower agent.critic_lr or "
                "agent.tau, more critics (agent.num_critics=3: the target takes their minimum), or agent=crossq")))
        for network in ("critic", "actor", "value"):
            fraction = metrics.get(f"health/dormant_{network}", math.nan)
            if self._watch(f"dormant_{network}", fraction > cfg.dormant_max, fraction):
                norm = "actor_norm" if network == "actor" else "critic_norm"
                alerts.append(Alert(step, f"dormant_{network}", f"{network} units dormant", (
                    f"{fraction:.0%} of the {network}'s hidden units are dormant (tau {cfg.dormant_tau:g}) for "
                    f"{_evaluations(n)}: the {network} is losing plasticity; try resets (agent.reset_every=100000 "
                    f"agent.reset_networks=[{network}]), agent.{norm}=layer with agent.weight_norm=[{network}], or a "
                    f"lower agent.{network}_lr")))
        entropy, target = metrics.get("health/entropy", math.nan), metrics.get("health/target_entropy", math.nan)
        if self._watch("entropy", entropy < target - cfg.entropy_margin * max(1.0, abs(target)), entropy):
            fix = ("try a higher agent.alpha_lr or agent.alpha_init, or a lower agent.actor_lr" if learns_alpha
                   else "alpha is fixed: try agent.alpha=auto (learned toward the target) or a larger agent.alpha")
            alerts.append(Alert(step, "entropy", "policy entropy collapsing", (
                f"policy entropy {entropy:.2f} is {target - entropy:.2f} below its target {target:.2f} for "
                f"{_evaluations(n)}: the policy is collapsing toward a deterministic one; {fix}")))
        self.alert_steps += [alert.step for alert in alerts]
        return alerts

    def _watch(self, kind: str, past: bool, value: float, unless_falling: bool = False) -> bool:
        """Count evaluations in a row past a threshold: True at the health.patience-th, once per stretch
        (unless_falling: not while the value is below where it stood health.patience - 1 evaluations ago)."""
        if not past:
            self.streaks.pop(kind, None)
            self.raised.discard(kind)
            return False
        streak = self.streaks.setdefault(kind, [])
        streak.append(float(value))
        if len(streak) < self.cfg.patience or kind in self.raised:
            return False
        if unless_falling and streak[-1] < streak[-self.cfg.patience]:
            return False
        self.raised.add(kind)
        return True

    # ---- collapse ------------------------------------------------------------------------------------
    def collapsed(self, step: int, signed_return: float, best: float, best_step: int, sign: float = 1.0) -> Alert | None:
        """The return (times `sign`, the objective's: higher is better) far below its best for health.patience
        evaluations in a row, with an alert raised during them or still holding, once the run has learned
        something."""
        if self.first_return is None:
            self.first_return = signed_return
        limit = best - self.cfg.collapse_drop * (best - self.first_return)
        # Nothing to fall from until the run has learned: best 10% (of the larger magnitude) past the first.
        learned = best - self.first_return > 0.1 * max(abs(best), abs(self.first_return))
        if not (learned and signed_return < limit):
            self.below.clear()
            return None
        self.below.append(step)
        alerted = self.raised or any(s >= self.below[0] for s in self.alert_steps)  # still holding, or new
        if len(self.below) < self.cfg.patience or not alerted:
            return None
        self.below.clear()
        return Alert(step, "collapse", "run collapsing",
                     f"evaluation return {sign * signed_return:.1f} {'below' if sign > 0 else 'above'} {sign * limit:.1f} "
                     f"(best {sign * best:.1f} at step {best_step}) for {_evaluations(self.cfg.patience)}, with the "
                     "alerts above: the run is collapsing")

    def rolled_back(self) -> None:
        """After a rollback the measurements start over on the restored agent."""
        self.rollbacks += 1
        self.streaks.clear()
        self.raised.clear()

    # ---- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "streaks": self.streaks, "raised": sorted(self.raised),
                "alert_steps": self.alert_steps, "first_return": self.first_return, "below": self.below,
                "rollbacks": self.rollbacks}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.streaks = {k: list(v) for k, v in state["streaks"].items()}
        self.raised = set(state["raised"])
        self.alert_steps, self.first_return = list(state["alert_steps"]), state["first_return"]
        self.below, self.rollbacks = list(state["below"]), state["rollbacks"]


def _percent(fraction: float) -> str:
    return f"{fraction * 100:+.0f}%"


def _trend(values: list[float]) -> str:
    return " and rising" if len(values) > 1 and all(b > a for a, b in zip(values, values[1:])) else ""


def _evaluations(n: int) -> str:
    return "1 evaluation" if n == 1 else f"{n} evaluations"
