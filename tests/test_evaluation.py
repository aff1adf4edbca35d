"""Evaluation episodes are recorded one by one and summarized once (run/evaluation.py)."""

import numpy as np
import pytest

from sac_runner.config import EnvConfig
from sac_runner.run.envs import make_env
from sac_runner.run.evaluation import EpisodeRecord, EvalResult, evaluate


class StillAgent:
    def act(self, obs, deterministic=True):
        return np.zeros(1, np.float32)


def test_each_episode_keeps_the_numbers_of_its_last_info_and_the_summary_gives_their_means():
    env = make_env(EnvConfig(id="Goal-v0"))  # wrapped as training's, RecordEpisodeStatistics' `episode` included
    result = evaluate(StillAgent(), env, episodes=3, seed=4)
    env.close()
    # Seeds 4, 5, 6: 2, 3 and 1 steps of 0.5; success on even seeds; distance seed % 5. Neither the values
    # that are no numbers nor `progress` (reported before the end only) are kept.
    assert result.episodes == [EpisodeRecord(1.0, 2, {"is_success": 1.0, "distance": 4.0}),
                               EpisodeRecord(1.5, 3, {"is_success": 0.0, "distance": 0.0}),
                               EpisodeRecord(0.5, 1, {"is_success": 1.0, "distance": 1.0})]
    summary = result.summary()
    assert list(summary) == ["eval/return_mean", "eval/return_std", "eval/return_min", "eval/return_max",
                             "eval/length_mean", "eval/is_success_mean", "eval/distance_mean"]
    assert summary == pytest.approx({
        "eval/return_mean": 1.0, "eval/return_std": np.sqrt(((0.0 ** 2) + 0.5 ** 2 + 0.5 ** 2) / 3),
        "eval/return_min": 0.5, "eval/return_max": 1.5, "eval/length_mean": 2.0,
        "eval/is_success_mean": 2 / 3, "eval/distance_mean": 5 / 3})
    assert list(result.summary(prefix="")) == [key.removeprefix("eval/") for key in summary]


def test_an_info_value_is_averaged_over_the_episodes_that_report_it_and_never_replaces_the_return():
    result = EvalResult([EpisodeRecord(1.0, 4, {"is_success": 1.0, "return": 99.0}), EpisodeRecord(3.0, 6)])
    assert result.summary() == {"eval/return_mean": 2.0, "eval/return_std": 1.0, "eval/return_min": 1.0,
                                "eval/return_max": 3.0, "eval/length_mean": 5.0, "eval/is_success_mean": 1.0}
