"""The training loop: terminated vs truncated, warm-up, cadence, outputs."""

import json

import numpy as np
import torch

from sac_runner.run.evaluation import EVAL_SEED_OFFSET
from tests.harness import tiny_config, train_tiny


def test_termination_is_stored_and_truncation_is_not(tmp_path):
    # Countdown-v0 terminates every 3rd step; CountdownTruncated-v0 is cut by a 4-step time limit.
    parts = train_tiny(tmp_path, "env.id=Countdown-v0", "schedule.total_steps=30").parts
    t = parts.buffer.transitions()
    assert t.terminated.tolist() == [0.0, 0.0, 1.0] * 10
    assert np.all(t.next_obs[2::3].numpy() == 0.0)  # the terminal observation itself is stored

    parts = train_tiny(tmp_path, "env.id=CountdownTruncated-v0", "schedule.total_steps=32").parts
    t = parts.buffer.transitions()
    assert not t.terminated.any() and len(t.obs) == 32
    # At each truncation the stored next_obs is the real last observation, not the reset one.
    assert t.next_obs[3::4, 0].tolist() == [96.0] * 8


def test_warm_up_uses_random_actions_then_the_policy(tmp_path, monkeypatch):
    calls = []
    from sac_runner.algo.sac import SAC
    original = SAC.act
    monkeypatch.setattr(SAC, "act", lambda self, obs, deterministic=False: calls.append(deterministic) or original(self, obs, deterministic))
    run = train_tiny(tmp_path, "schedule.total_steps=120", "schedule.start_steps=100",
                     "schedule.eval_every=1000").run
    # 20 stochastic actions after warm-up, then deterministic evaluation steps at the last step.
    assert calls.count(False) == 20
    assert calls.count(True) == run.schedule.eval_episodes * 200


def test_updates_start_after_update_after_and_follow_the_ratio(tmp_path, monkeypatch):
    updates = []
    from sac_runner.algo.sac import SAC
    original = SAC.update
    monkeypatch.setattr(SAC, "update", lambda self, batch: updates.append(1) or original(self, batch))
    train_tiny(tmp_path, "schedule.total_steps=100", "schedule.update_after=60", "schedule.update_every=10",
               "schedule.gradient_steps=3")
    assert len(updates) == 3 * 5  # steps 60, 70, 80, 90, 100


def test_metrics_file_has_namespaced_keys_on_the_step_axis(tmp_path):
    train_tiny(tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*records)
    assert {"step", "train/episode_return", "train/critic_loss", "train/actor_loss", "train/alpha",
            "train/entropy", "train/q_mean", "time/sps", "buffer/size", "eval/return_mean"} <= keys
    assert all(k == "step" or k.split("/")[0] in {"train", "eval", "time", "buffer", "health"} for k in keys)
    steps = [r["step"] for r in records]
    assert steps == sorted(steps) and steps[-1] == 300


def test_evaluations_log_the_means_of_what_the_environment_reports_at_the_end_of_its_episodes(tmp_path):
    records = train_tiny(tmp_path, "env.id=Goal-v0", "schedule.eval_episodes=3", "seed=1").records
    # Goal-v0 (tests/toy_envs.py): an even episode seed succeeds; the distance is the seed modulo 5.
    seeds = [1 + EVAL_SEED_OFFSET + i for i in range(3)]
    evaluations = [r for r in records if "eval/return_mean" in r]
    assert [r["step"] for r in evaluations] == [150, 300]
    for record in evaluations:
        assert record["eval/is_success_mean"] == np.mean([seed % 2 == 0 for seed in seeds]) == 1 / 3
        assert record["eval/distance_mean"] == np.mean([seed % 5 for seed in seeds]) == 2.0
        assert record["eval/length_mean"] == np.mean([1 + seed % 3 for seed in seeds])
        assert "eval/progress_mean" not in record and "eval/episode_mean" not in record


def test_checkpoints_are_written_at_the_cadence_and_load_without_pickle(tmp_path):
    train_tiny(tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best.pt", "latest.pt", "step_000000150.pt", "step_000000300.buffer.pt", "step_000000300.pt"]
    assert (tmp_path / "checkpoints" / "latest.pt").resolve().name == "step_000000300.pt"
    data = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert data["step"] == 300 and set(data["agent"]) >= {"actor", "critic", "target", "log_alpha", "actor_optimizer", "critic_optimizer"}


def test_same_seed_same_run(tmp_path):
    _, a, fa, *_ = train_tiny(tmp_path / "a")
    _, b, fb, *_ = train_tiny(tmp_path / "b")
    assert fa["eval/return_mean"] == fb["eval/return_mean"]
    for pa, pb in zip(a.agent.actor.parameters(), b.agent.actor.parameters()):
        assert torch.equal(pa, pb)


def test_wandb_run_is_finished_when_training_fails(tmp_path, monkeypatch):
    import pytest
    import wandb

    from sac_runner.algo.sac import SAC
    from sac_runner.run.training import train

    finished = []
    original_finish = wandb.sdk.wandb_run.Run.finish
    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "finish",
                        lambda self, exit_code=None, **kw: finished.append(exit_code) or original_finish(self, exit_code=exit_code, **kw))

    def broken_update(self, batch):
        raise RuntimeError("boom")

    monkeypatch.setattr(SAC, "update", broken_update)
    cfg = tiny_config("logging=wandb", "logging.mode=offline")
    with pytest.raises(RuntimeError, match="boom"):
        train(cfg, tmp_path)
    assert finished == [1] and wandb.run is None
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_tensorboard_gets_every_metric_at_its_environment_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, _, _, records, _ = train_tiny(tmp_path, "logging.tensorboard=true")
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    expected: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        for key, value in record.items():
            if key != "step" and value is not None:
                expected.setdefault(key, []).append((record["step"], value))
    assert set(events.Tags()["scalars"]) == set(expected)
    for key, points in expected.items():
        got = [(e.step, e.value) for e in events.Scalars(key)]
        assert [s for s, _ in got] == [s for s, _ in points], key
        np.testing.assert_allclose([v for _, v in got], [v for _, v in points], rtol=1e-6, err_msg=key)


def test_tensorboard_is_off_by_default(tmp_path):
    train_tiny(tmp_path)
    assert not (tmp_path / "tensorboard").exists()
