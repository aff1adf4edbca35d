"""nan_guard: stop at the first update whose losses, Q values or alpha are not finite, and never
write a checkpoint that holds a non-finite parameter.

After every update its scalar metrics (critic/actor/value/temperature losses, mean Q and target,
entropy, alpha) are stacked into one small tensor and tested with one `isfinite` (about 20 us); the
loop reads the results of one environment step's updates together (on a GPU, one sync per step).
Every network takes part in some loss of every update (the critic's target samples next actions from
the actor through the target critics; V's target uses actor and critics), so a non-finite weight
left by one update makes the next update's losses non-finite. The parameters themselves (actor,
critics, targets, V, a learned log alpha) are checked before each checkpoint is written: that check
reads every weight (about 0.1-0.3 ms at HalfCheetah sizes), too much to pay on every update.
Only when a check fails are the pieces looked at one by one, to name the culprit.
"""

from __future__ import annotations

import torch
from torch import nn

from sac_runner.algo.replay_buffer import Batch


class NonFiniteUpdate(Exception):
    """An update produced a non-finite value; `quantity` names it ("critic loss", "actor parameters"...)."""

    def __init__(self, quantity: str, batch_note: str):
        super().__init__(quantity)
        self.quantity = quantity
        self.batch_note = batch_note


class NanGuard:
    def __init__(self, agent) -> None:
        self.networks: dict[str, nn.Module] = {"actor": agent.actor, "critic": agent.critic, "target": agent.target}
        if agent.value is not None:
            self.networks["value network"] = agent.value
        self.params = [p for module in self.networks.values() for p in module.parameters()]
        # A fixed alpha of 0 is log_alpha = -inf by design; only a learned one is checked.
        self.log_alpha = agent.log_alpha if agent.learns_alpha else None
        if self.log_alpha is not None:
            self.params.append(self.log_alpha)

    def finite(self, metrics: dict[str, torch.Tensor]) -> torch.Tensor:
        """Whether every loss, Q value and alpha of this update is finite: a bool tensor on the update's
        device, read by the loop once per environment step (one device sync for all its updates)."""
        with torch.no_grad():
            return torch.isfinite(torch.stack([value.detach().float().reshape(()) for value in metrics.values()])).all()

    def check(self, metrics: dict[str, torch.Tensor], batch: Batch) -> None:
        """Raise NonFiniteUpdate if a loss, Q value or alpha of this update is NaN or infinite."""
        if not bool(self.finite(metrics)):
            raise NonFiniteUpdate(self._culprit(metrics), non_finite_inputs(batch))

    def check_parameters(self) -> None:
        """Raise NonFiniteUpdate if any parameter is NaN or infinite (before a checkpoint is written)."""
        with torch.no_grad():
            if not bool(torch.isfinite(torch.nn.utils.get_total_norm(self.params))):
                raise NonFiniteUpdate(self._culprit({}), "")

    def _culprit(self, metrics: dict[str, torch.Tensor]) -> str:
        for name, value in metrics.items():
            if not bool(torch.isfinite(value).all()):
                return name.removeprefix("train/").replace("_", " ").replace("q mean", "Q value (mean)")
        for name, module in self.networks.items():
            if any(not bool(torch.isfinite(p).all()) for p in module.parameters()):
                return f"{name} parameters"
        if self.log_alpha is not None and not bool(torch.isfinite(self.log_alpha).all()):
            return "log alpha"
        return "parameter norm (it overflows float32)"


def non_finite_inputs(batch: Batch) -> str:
    """Which fields of the batch hold NaN or inf (data from the environment), or '' if none."""
    bad = [name for name, value in batch._asdict().items()
           if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())]
    return f"the batch itself holds non-finite {', '.join(bad)} (from the environment)" if bad else ""


def batch_tensors(batch: Batch) -> dict[str, torch.Tensor]:
    """The batch as a plain dict of CPU tensors, saved with torch.save for inspection."""
    return {name: value.detach().cpu().clone() for name, value in batch._asdict().items()
            if isinstance(value, torch.Tensor)}
