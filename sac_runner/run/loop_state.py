"""The training loop's own state: its counters and what it remembers of evaluations. One typed object
the Trainer owns; a checkpoint holds its `state_dict()` and a resumed loop gets it back with
`load_state_dict()`. The agent, the buffer, the environments and the health monitor each keep their own."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class LoopState:
    step: int = 0                 # environment steps done
    episode: int = 0              # training episodes finished
    # The best evaluation so far, signed by the objective (higher is better; a cost is negated), and
    # its step (its agent is checkpoints/best.pt).
    best_eval: float = -float("inf")
    best_step: int = 0
    last_eval: dict[str, float] = field(default_factory=dict)
    evaluations: int = 0
    env_failures: int = 0         # exceptions the environments raised in step (env.max_failures)
    elapsed: float = 0.0          # seconds trained before this process (a resumed run's earlier segments)

    def state_dict(self) -> dict[str, Any]:
        return {**asdict(self), "last_eval": dict(self.last_eval)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A saved state; keys that older checkpoints lack keep their defaults (best_step: before best.pt
        held its own agent; env_failures, elapsed: before they were counted)."""
        defaults = LoopState()
        for f in fields(self):
            setattr(self, f.name, state.get(f.name, getattr(defaults, f.name)))
        self.last_eval = dict(self.last_eval)
