"""The functional optimizer step of agent.compile=compile (algo/functional_step.py) against PyTorch's own:
Adam, gradient clipping, and a whole step of a network with Batch Renormalization, eagerly (the
compiled update is compared with the eager one in test_compiled_update.py)."""

import copy

import torch
from torch import nn

from sac_runner.algo.functional_step import FunctionalStep, adam_, clipped_by_global_norm
from sac_runner.algo.layers import BatchRenorm, batch_statistics

TIGHT = dict(rtol=1e-5, atol=1e-6)  # as test_compiled_update.py: float32 rounding of two gradient paths


def test_adam_is_torch_adams_step_after_step():
    torch.manual_seed(0)
    params = [torch.randn(4, 3), torch.randn(3)]
    ours = [p.clone() for p in params]
    reference = [nn.Parameter(p.clone()) for p in params]
    optimizer = torch.optim.Adam(reference, lr=3e-4, betas=(0.5, 0.999), eps=1e-8)
    steps = [torch.zeros(()) for _ in params]
    exp_avgs, exp_avg_sqs = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    for _ in range(5):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(reference, grads):
            p.grad = g.clone()
        optimizer.step()
        adam_(ours, grads, steps, exp_avgs, exp_avg_sqs, lr=torch.tensor(3e-4), betas=(0.5, 0.999), eps=1e-8)
        for mine, theirs in zip(ours, reference):
            torch.testing.assert_close(mine, theirs.detach(), **TIGHT)
    state = optimizer.state[reference[0]]
    torch.testing.assert_close(exp_avgs[0], state["exp_avg"], **TIGHT)
    torch.testing.assert_close(exp_avg_sqs[0], state["exp_avg_sq"], **TIGHT)
    assert steps[0].item() == state["step"].item() == 5


def test_clipping_scales_as_clip_grad_norm_does():
    grads = [torch.tensor([3.0, 0.0]), torch.tensor([4.0])]  # global norm 5
    torch.testing.assert_close(clipped_by_global_norm(grads, 1.0)[1], torch.tensor([4.0 / (5.0 + 1e-6)]))
    assert all(torch.equal(a, b) for a, b in zip(clipped_by_global_norm(grads, 10.0), grads))  # under the cap: as is
    params = [nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    nn.utils.clip_grad_norm_(params, 1.0)
    for p, g in zip(params, clipped_by_global_norm(grads, 1.0)):
        torch.testing.assert_close(p.grad, g)


def test_a_step_equals_backward_and_adam_and_updates_the_running_statistics():
    """A network with Batch Renormalization, stepped once by loss.backward() + torch.optim.Adam and once
    functionally: the same weights, moments and running statistics."""
    torch.manual_seed(0)
    net = nn.Sequential(BatchRenorm(5, warmup=0), nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))
    other = copy.deepcopy(net)
    x, y = torch.randn(16, 5), torch.randn(16, 1)

    def loss_of(network):
        def loss():
            with batch_statistics(network):
                prediction = network(x)
            return ((prediction - y) ** 2).mean(), prediction.detach()
        return loss

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    step = FunctionalStep(other, torch.optim.Adam(other.parameters(), lr=1e-2))
    for _ in range(3):
        loss, _ = loss_of(net)()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step.prepare()
        with torch.no_grad():  # as the update runs it: gradients from torch.func only
            functional_loss, prediction = step(loss_of(other))
        torch.testing.assert_close(functional_loss, loss.detach(), **TIGHT)
    for (name, a), b in zip(net.state_dict().items(), other.state_dict().values()):
        torch.testing.assert_close(b, a, **TIGHT, msg=name)
    assert other[0].batches.item() == 3  # the running statistics moved, inside the gradient transform
    moments = step.optimizer.state[other[1].weight]["exp_avg"]
    torch.testing.assert_close(moments, optimizer.state[net[1].weight]["exp_avg"], **TIGHT)
