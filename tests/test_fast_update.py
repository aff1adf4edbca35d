"""sac_runner's update (batched critic ensemble, frozen critic weights in the actor loss, fused Adam,
foreach target update) against the plain textbook update in tests/reference_sac.py: the same
losses and the same parameters after several updates from the same weights, batches and noise.
Eagerly, and compiled (agent.compile=compile on CPU; compile and cudagraphs on a GPU)."""

import pytest
import torch
from torch._dynamo.utils import counters

from sac_runner.algo.replay_buffer import Batch
from sac_runner.algo.sac import SAC
from sac_runner.config import AgentConfig
from tests.reference_sac import PlainSAC, plain_critics

gpu = pytest.mark.gpu

OBS, ACT, B = 5, 3, 64


def _batches(n: int, n_step: bool, prioritized: bool, device: str = "cpu") -> list[Batch]:
    g = torch.Generator().manual_seed(123)
    batches = []
    for _ in range(n):
        batches.append(Batch(
            obs=torch.randn(B, OBS, generator=g), action=torch.rand(B, ACT, generator=g) * 2 - 1,
            reward=torch.randn(B, generator=g), next_obs=torch.randn(B, OBS, generator=g),
            terminated=(torch.rand(B, generator=g) < 0.2).float(),
            discount=0.99 ** torch.randint(1, 4, (B,), generator=g).float() if n_step else None,
            weights=torch.rand(B, generator=g) + 0.5 if prioritized else None))
    return [Batch(*(None if t is None else t.to(device) for t in batch)) for batch in batches]


VARIANTS = {
    "default": {},
    "three critics": dict(agent=dict(num_critics=3)),
    "fixed alpha": dict(agent=dict(alpha=0.3)),
    "delayed actor and targets": dict(agent=dict(policy_update_every=2, target_update_every=2)),
    "hard target copies": dict(agent=dict(target_update_every=3, tau=1.0)),
    "n-step returns": dict(n_step=True),
    "prioritized replay": dict(prioritized=True),
    "reward scale, cost": dict(agent=dict(reward_scale=5.0, objective="minimize")),
    "all of the above": dict(agent=dict(num_critics=3, policy_update_every=2, target_update_every=2, reward_scale=5.0,
                                        objective="minimize"), n_step=True, prioritized=True),
}
CASES = [pytest.param(variant, "cpu", "off", id=variant) for variant in VARIANTS] + [
    pytest.param("all of the above", "cpu", "compile", id="all-compiled"),
    pytest.param("default", "cuda", "off", marks=gpu, id="default-cuda"),
    pytest.param("all of the above", "cuda", "compile", marks=gpu, id="all-cuda-compiled"),
    pytest.param("all of the above", "cuda", "cudagraphs", marks=gpu, id="all-cuda-graphs"),
]


@pytest.mark.parametrize("variant, device, compile_mode", CASES)
def test_fast_update_matches_the_plain_reference(variant, device, compile_mode, eager_random_numbers):
    spec = VARIANTS[variant]
    torch.manual_seed(0)
    cfg = AgentConfig(hidden_sizes=[32, 32], compile=compile_mode, **spec.get("agent", {}))
    agent = SAC(OBS, ACT, cfg, torch.device(device))
    plain = PlainSAC(agent)
    frames_compiled = counters["frames"]["ok"]
    for step, batch in enumerate(_batches(6, spec.get("n_step", False), spec.get("prioritized", False), device)):
        torch.manual_seed(1000 + step)  # the same Gaussian noise for both
        fast = agent.update(batch).metrics
        torch.manual_seed(1000 + step)
        expected = plain.update(batch)
        assert fast["train/critic_loss"].item() == pytest.approx(expected["critic_loss"], rel=1e-5)
        assert ("train/actor_loss" in fast) == ("actor_loss" in expected)
        if "actor_loss" in expected:
            assert fast["train/actor_loss"].item() == pytest.approx(expected["actor_loss"], rel=1e-5, abs=1e-6)

    tight = dict(rtol=1e-5, atol=1e-6)
    for fast_p, plain_p in zip(agent.actor.net.parameters(), plain.actor.parameters()):
        torch.testing.assert_close(fast_p, plain_p, **tight)
    for ensemble, plain_qs in ((agent.critic, plain.critics), (agent.target, plain.target_critics)):
        for fast_q, plain_q in zip(plain_critics(ensemble), plain_qs):
            for fast_p, plain_p in zip(fast_q.parameters(), plain_q.parameters()):
                torch.testing.assert_close(fast_p, plain_p, **tight)
    torch.testing.assert_close(agent.log_alpha.detach(), plain.log_alpha.detach(), **tight)
    assert (counters["frames"]["ok"] > frames_compiled) == (compile_mode != "off")  # compiled, or eager as asked


def test_the_comparison_detects_a_wrong_update():
    """The oracle is sharp: a fast update whose target forgets the entropy term disagrees."""
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, AgentConfig(hidden_sizes=[32, 32], alpha=0.5), torch.device("cpu"))
    plain = PlainSAC(agent)
    plain.log_alpha = torch.tensor(-30.0)  # alpha ~ 0 in the reference only
    batch = _batches(1, False, False)[0]
    torch.manual_seed(7)
    fast = agent.update(batch).metrics
    torch.manual_seed(7)
    expected = plain.update(batch)
    assert fast["train/critic_loss"].item() != pytest.approx(expected["critic_loss"], rel=1e-5)
