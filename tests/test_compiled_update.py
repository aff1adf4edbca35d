"""agent.compile against the eager update, for what the plain reference (test_fast_update.py) does not
cover: the 2018 value network, normalized observations, gradient clipping, the actor's catch-up steps,
a learning rate changed between updates, discrete actions, acting, and the 2022-2025 building blocks
(LayerNorm and dropout critics, Batch Renormalization through its warm-up, CrossQ's joint pass, SimBa
blocks, weight normalization). Then checkpoints move between
compile modes (and between GPU and CPU) and training goes on as if nothing happened."""

import copy

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from sac_runner.algo.discrete_sac import DiscreteSAC
from sac_runner.algo.replay_buffer import Batch
from sac_runner.algo.sac import SAC
from sac_runner.config import AgentConfig

OBS, ACT, B = 5, 3, 32
TIGHT = dict(rtol=1e-5, atol=1e-6)

OPTIONS = {
    "value network, DroQ critics, renormalized actor, clipped, catch-up, lr decay": (SAC, dict(
        value_network=True, max_grad_norm=0.5, policy_update_every=2, policy_update_catch_up=True,
        lr_decay="linear", actor_lr_final=1e-5, critic_lr_final=1e-5, alpha_lr_final=1e-5, value_lr_final=1e-5,
        critic_norm="layer", critic_dropout=0.1, actor_norm="batch_renorm", batch_renorm_warmup=2)),
    "discrete, CrossQ critics, SimBa actor, weight norm": (DiscreteSAC, dict(
        critic_norm="batch_renorm", target_network=False, adam_betas=[0.5, 0.999], batch_renorm_warmup=2,
        actor_architecture="simba", weight_norm=["critic", "actor"])),
    "images: DrQ encoder trained by the critics, shift augmentation, encoder target rate": (SAC, dict(
        encoder="drq", feature_dim=16, augmentation="shift", encoder_tau=0.05)),
}
IMAGE = (6, 32, 32)  # two stacked 32x32 RGB frames (small: the test compiles), for the options with an encoder
CASES = [pytest.param(option, "cpu", "compile", id=f"{option}-compile") for option in OPTIONS] + [
    pytest.param(option, "cuda", mode, marks=pytest.mark.gpu, id=f"{option}-cuda-{mode}")
    for option in OPTIONS for mode in ("compile", "cudagraphs")]


def _agent(option: str, device: str, compile_mode: str) -> SAC:
    agent_class, options = OPTIONS[option]
    torch.manual_seed(0)
    images = "encoder" in options
    agent = agent_class(IMAGE if images else OBS, ACT, AgentConfig(hidden_sizes=[32, 32], compile=compile_mode, **options),
                        torch.device(device), normalize_obs=not images)
    if not images:
        agent.normalizer.update(np.random.default_rng(0).normal(2.0, 3.0, (50, OBS)))
    return agent


def _observations(agent: SAC, n: int, g: torch.Generator) -> torch.Tensor:
    if agent.encoder is not None:  # uint8 frames
        return torch.randint(0, 256, (n, *IMAGE), generator=g, dtype=torch.uint8)
    return torch.randn(n, OBS, generator=g) * 3 + 2


def _batch(step: int, agent: SAC, device: str) -> Batch:
    g = torch.Generator().manual_seed(step)
    discrete = isinstance(agent, DiscreteSAC)
    action = torch.randint(0, ACT, (B, 1), generator=g).float() if discrete else torch.rand(B, ACT, generator=g) * 2 - 1
    batch = Batch(_observations(agent, B, g), action, torch.randn(B, generator=g),
                  _observations(agent, B, g), (torch.rand(B, generator=g) < 0.2).float())
    return Batch(*(None if t is None else t.to(device) for t in batch))


def _train_side_by_side(agents: list[SAC], steps: range, device: str) -> None:
    """The same updates (batch, noise, learning-rate schedule) for every agent; every metric and TD error equal."""
    for step in steps:
        results = []
        for agent in agents:
            agent.set_lr_progress(step / 10)
            torch.manual_seed(1000 + step)
            update = agent.update(_batch(step, agent, device))
            results.append(({k: v.clone() for k, v in update.metrics.items()}, update.td_error.clone()))
        (metrics, td_error), (other_metrics, other_td_error) = results
        assert metrics.keys() == other_metrics.keys()
        for key in metrics:
            torch.testing.assert_close(other_metrics[key], metrics[key], **TIGHT, msg=f"{key} at update {step}")
        torch.testing.assert_close(other_td_error, td_error, **TIGHT, msg=f"td_error at update {step}")


def _assert_same_agents(agent: SAC, other: SAC) -> None:
    mine, theirs = agent.state_dict(), other.state_dict()
    # With an encoder, a weight may differ by up to 1e-5: Adam moves a weight whose gradient is near its
    # eps (1e-8) by lr * g / (|g| + eps), which the gradient's rounding (compiled convolutions sum in
    # another order) changes by a fraction of the step lr = 3e-4; any error in the update is a whole step.
    close = dict(rtol=1e-5, atol=1e-5) if agent.encoder is not None else TIGHT
    for network in ("actor", "critic", "target", "value"):
        for key, value in mine.get(network, {}).items():
            torch.testing.assert_close(theirs[network][key].cpu(), value.cpu(), **close, msg=f"{network}.{key}")
    torch.testing.assert_close(other.log_alpha.detach().cpu(), agent.log_alpha.detach().cpu(), **TIGHT)


@pytest.mark.parametrize("option, device, compile_mode", CASES)
def test_compiled_update_and_policy_match_the_eager_ones(option, device, compile_mode, eager_random_numbers):
    eager, compiled = _agent(option, device, "off"), _agent(option, device, compile_mode)
    frames_compiled = counters["frames"]["ok"]
    # With an encoder, 4 updates: compiled convolutions sum in another order than eager ones (oneDNN
    # picks its own kernels), and Adam's early, sign-like steps grow that rounding past 1e-5 by update 6.
    _train_side_by_side([eager, compiled], range(4 if eager.encoder is not None else 6), device)
    assert counters["frames"]["ok"] > frames_compiled  # TorchDynamo compiled the pieces (no silent eager run)
    _assert_same_agents(eager, compiled)
    assert compiled.learning_rates() == pytest.approx(eager.learning_rates(), rel=1e-6)  # the decay reached both

    obs = _observations(eager, 4, torch.Generator().manual_seed(1)).numpy()
    for deterministic in (True, False):
        for observations in (obs, obs[0]):  # a vector step's batch, and one environment's observation
            torch.manual_seed(5)
            expected = eager.act(observations, deterministic)
            torch.manual_seed(5)
            np.testing.assert_allclose(compiled.act(observations, deterministic), expected, rtol=1e-5, atol=1e-6)
    assert compiled.compile_seconds > 0 and eager.compile_seconds == 0


@pytest.mark.parametrize("option, device, compile_mode", CASES)
def test_checkpoints_move_between_compile_modes(option, device, compile_mode, eager_random_numbers):
    """A compiled agent's state loads into an eager one and the reverse (learning rates saved as plain
    numbers, each optimizer keeping its own implementation), and both go on training identically."""
    compiled = _agent(option, device, compile_mode)
    _train_side_by_side([compiled, _agent(option, device, compile_mode)], range(3), device)  # compiled (and captured)
    state = copy.deepcopy(compiled.state_dict())  # as a checkpoint file would: no tensors shared with `compiled`
    assert all(isinstance(group["lr"], float) for name in compiled.optimizers
               for group in state[f"{name}_optimizer"]["param_groups"])

    eager = _agent(option, device, "off")
    eager.load_state_dict(state)
    _assert_same_agents(compiled, eager)
    _train_side_by_side([eager, compiled], range(3, 6), device)

    # And back: an eager agent's state into the compiled one, which captured its graphs already.
    restarted = _agent(option, device, "off")
    restarted.load_state_dict(copy.deepcopy(eager.state_dict()))
    compiled.load_state_dict(copy.deepcopy(eager.state_dict()))
    _train_side_by_side([restarted, compiled], range(6, 9), device)
    _assert_same_agents(restarted, compiled)
    assert all(isinstance(group["lr"], torch.Tensor) for optimizer in compiled.optimizers.values()
               for group in optimizer.param_groups)


@pytest.mark.gpu
@pytest.mark.parametrize("option", OPTIONS)
def test_checkpoints_move_between_gpu_and_cpu(option, eager_random_numbers):
    """A GPU agent's state resumes on the CPU and the reverse, with the same weights and a working update."""
    on_gpu = _agent(option, "cuda", "cudagraphs")
    _train_side_by_side([on_gpu, _agent(option, "cuda", "off")], range(4), "cuda")
    on_cpu = _agent(option, "cpu", "off")
    on_cpu.load_state_dict(copy.deepcopy(on_gpu.state_dict()))
    _assert_same_agents(on_gpu, on_cpu)
    back = _agent(option, "cuda", "cudagraphs")
    back.load_state_dict(copy.deepcopy(on_cpu.state_dict()))
    _assert_same_agents(on_cpu, back)
    for agent, device in ((on_cpu, "cpu"), (back, "cuda")):
        update = agent.update(_batch(9, agent, device))
        assert torch.isfinite(update.metrics["train/critic_loss"]).item()


def test_every_new_agent_compiles_even_past_dynamos_recompile_limit():
    """TorchDynamo would run the update eagerly, silently, once more agents than its recompile_limit
    (8) were compiled in one process (a sweep's jobs): each new compiled agent starts a fresh cache."""
    with torch._dynamo.config.patch(recompile_limit=1):
        for _ in range(2):
            agent = DiscreteSAC(OBS, ACT, AgentConfig(hidden_sizes=[8], compile="compile"), torch.device("cpu"))
            compiled_before = counters["frames"]["ok"]
            agent.update(_batch(0, agent, "cpu"))
            assert counters["frames"]["ok"] > compiled_before


def test_warm_ups_and_the_capture_of_a_piece_run_on_one_stream(monkeypatch):
    """A parameter's gradient-accumulation node keeps the stream it first ran on: warming up on another
    stream than the capture's made CUDA refuse the capture on an H200. CUDA's streams are stood in for
    here, so the discipline is checked on any machine."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    from sac_runner.algo import compilation

    made, entered, captured_on = [], [], []

    class Stream:
        def __init__(self, register: bool = True):
            if register:
                made.append(self)

        def wait_stream(self, other):
            pass

    @contextmanager
    def on(stream):
        entered.append(stream)
        yield

    def capture(fn, args, stream):
        captured_on.append(stream)
        return SimpleNamespace(replay=lambda a: fn(*a))

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", on)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda: Stream(register=False))
    monkeypatch.setattr(compilation, "_CapturedCall", capture)
    graphs = compilation.CudaGraphs(lambda x: x + 1, "critic update")
    x = torch.zeros(3)
    outs = [graphs.run(compilation._signature((x,)), (x,)) for _ in range(compilation.WARMUP_CALLS + 2)]
    assert all(torch.equal(out, x + 1) for out in outs)
    assert len(made) == 1 and entered == made * compilation.WARMUP_CALLS and captured_on == made


def test_on_a_cpu_compiled_code_draws_the_eager_random_numbers_by_itself():
    """Without the eager_random_numbers fixture: on a CPU, agent.compile=compile takes the actor's noise
    from PyTorch's generator (Inductor's fallback_random, set per compiled function), so a compiled run
    follows the eager one update for update."""
    agents = []
    for mode in ("off", "compile"):
        torch.manual_seed(0)
        agents.append(SAC(OBS, ACT, AgentConfig(hidden_sizes=[32, 32], compile=mode), torch.device("cpu")))
    _train_side_by_side(agents, range(4), "cpu")
    _assert_same_agents(*agents)
