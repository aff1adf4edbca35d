"""One optimizer step as a function of tensors (agent.compile=compile): the loss, its gradient, gradient
clipping and Adam, with no autograd graph, no `backward()` and no `optimizer.step()`.

Eager PyTorch computes a step as loss -> loss.backward() -> optimizer.step(). Compiled, that sequence
breaks TorchDynamo's graph at `zero_grad`, `backward` and `step`, and AOTAutograd saves what the
backward pass needs between two graphs: on the CPU, Inductor stores each ReLU's backward mask byte by
byte (1.7 ms per 2 x 256 x 256 activation against 0.11 ms eager; docs/benchmarks.md). Here the gradient
comes from `torch.func.grad_and_value` over the trained parameters (`functional_call` puts them in the
network while the loss runs), and Adam updates parameters and moments in place. Traced by
torch.compile, a whole piece of the update is one forward program: the backward pass is ordinary
operations that Inductor fuses with the forward ones, and nothing is stored between graphs.

The moments live in the torch.optim.Adam they mirror (`optimizer.state`), so checkpoints, resets and
loading work as in eager mode, and a step here equals torch.optim.Adam's step within float rounding
(tests/test_fast_update.py, tests/test_compiled_update.py).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.func import functional_call, grad_and_value


class _Rebound(nn.Module):
    """Runs a loss function while `net`'s parameters are the tensors functional_call passes in."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, loss_fn: Callable[[], tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, Any]:
        return loss_fn()


class FunctionalStep:
    """Steps the parameters of `module` that `optimizer` (a torch.optim.Adam) trains."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Adam):
        trained = {id(p) for p in optimizer.param_groups[0]["params"]}
        named = [(name, p) for name, p in module.named_parameters() if id(p) in trained]
        self.optimizer = optimizer
        self.rebound = _Rebound(module)
        self.names = [f"net.{name}" for name, _ in named]
        # The parameters themselves are differentiated and stepped in place (the update runs under no_grad):
        # a detached view of each would be a second tensor for the same storage, and a compiled program
        # that writes one and reads the other (the actor's loss reads the critics just stepped) read stale
        # values (tests/test_compiled_update.py).
        self.params = [p for _, p in named]
        # Buffers the loss may update in place (Batch Renormalization's running statistics): passed into
        # the gradient transform as inputs, which torch.func lets a function mutate (captured tensors not).
        self.buffers = {f"net.{name}": b for name, b in module.named_buffers()}
        self.state: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] | None = None

    def prepare(self) -> None:
        """Adam's moments as torch.optim.Adam keeps them: fresh zeros for parameters it has no state for
        (a new or reset optimizer), the same tensors it holds otherwise (a loaded one). Call before the
        compiled update, after anything that replaced the optimizer's state."""
        steps, exp_avgs, exp_avg_sqs = [], [], []
        for p in self.params:
            state = self.optimizer.state[p]
            if not state:
                state.update(step=torch.zeros((), dtype=torch.float32, device=p.device),
                             exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                             exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format))
            steps.append(state["step"])
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
        self.state = (steps, exp_avgs, exp_avg_sqs)

    def __call__(self, loss_fn: Callable[[], tuple[torch.Tensor, Any]],
                 max_grad_norm: float | None = None) -> tuple[torch.Tensor, Any]:
        """One step on the loss `loss_fn()` computes with the module's parameters: (loss, aux)."""
        def loss_of(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
            return functional_call(self.rebound, {**params, **buffers}, (loss_fn,))

        grads, (loss, aux) = grad_and_value(loss_of, has_aux=True)(dict(zip(self.names, self.params)), self.buffers)
        grads = [grads[name] for name in self.names]
        if max_grad_norm is not None:
            grads = clipped_by_global_norm(grads, max_grad_norm)
        group = self.optimizer.param_groups[0]
        adam_(self.params, grads, *self.state, lr=group["lr"], betas=group["betas"], eps=group["eps"])
        return loss, aux


def clipped_by_global_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """The gradients scaled as nn.utils.clip_grad_norm_ scales them: by min(1, max_norm / (||g|| + 1e-6)),
    ||g|| the 2-norm of all of them together."""
    scale = (max_norm / (nn.utils.get_total_norm(grads) + 1e-6)).clamp(max=1.0)
    return [g * scale for g in grads]


def adam_(params: list[torch.Tensor], grads: list[torch.Tensor], steps: list[torch.Tensor],
          exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor], lr: float | torch.Tensor,
          betas: tuple[float, float], eps: float) -> None:
    """Adam (Kingma & Ba, 2015) as torch.optim.Adam computes it, in place:

        t <- t + 1,   m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """
    beta1, beta2 = betas
    for p, g, t, m, v in zip(params, grads, steps, exp_avgs, exp_avg_sqs):
        t.add_(1)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denominator = v.sqrt() / (1 - beta2 ** t).sqrt() + eps
        p.sub_(lr / (1 - beta1 ** t) * m / denominator)
