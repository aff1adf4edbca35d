import numpy as np
import pytest
import torch

from sac_runner.algo.normalization import ObservationNormalizer
from tests.harness import train_tiny


def test_running_statistics_by_hand():
    norm = ObservationNormalizer(2, enabled=True)
    for x in ([1.0, 10.0], [3.0, 10.0], [5.0, 40.0]):
        norm.update(np.array(x))
    assert norm.mean.tolist() == pytest.approx([3.0, 20.0])
    assert norm.var.tolist() == pytest.approx([8 / 3, 200.0])  # population variance
    out = norm(torch.tensor([[5.0, 20.0]]))
    assert out[0, 0].item() == pytest.approx(2 / np.sqrt(8 / 3), rel=1e-6) and out[0, 1].item() == pytest.approx(0.0)


def test_batch_update_equals_one_by_one_and_clips():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 3))
    a, b = ObservationNormalizer(3, True, clip=1.5), ObservationNormalizer(3, True, clip=1.5)
    a.update(data)
    for row in data:
        b.update(row)
    assert torch.allclose(a.mean, b.mean) and torch.allclose(a.var, b.var)
    assert a(torch.tensor([[100.0, -100.0, 3.0]], dtype=torch.float32)).abs().max().item() == pytest.approx(1.5)


def test_disabled_normalizer_is_the_identity():
    norm = ObservationNormalizer(2, enabled=False)
    norm.update(np.array([100.0, 100.0]))
    x = torch.tensor([[7.0, -3.0]])
    assert torch.equal(norm(x), x) and norm.count.item() == 0


def test_training_updates_statistics_evaluation_does_not_and_checkpoints_keep_them(tmp_path):
    _, parts, _, _, _ = train_tiny(tmp_path, "env.normalize_obs=true")
    norm = parts.agent.normalizer
    # 300 steps of Pendulum = 1 initial reset + 300 next observations + 1 reset after the 200-step episode;
    # the 2 evaluations (4 episodes of 200 steps) add nothing.
    assert norm.count.item() == 302
    stored = parts.buffer.transitions().obs.double()
    assert torch.allclose(norm.mean, stored.mean(0), atol=0.05)  # statistics of what the agent saw
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)["agent"]["normalizer"]
    assert torch.equal(saved["mean"], norm.mean) and saved["count"].item() == 302
