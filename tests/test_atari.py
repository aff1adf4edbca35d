"""Atari through ale-py (env=atari, run/atari.py): stacked uint8 frames channels first, the frame skip, the
signals only learning sees (clipped rewards, a lost life as terminal) against the game's score that
evaluation and train/episode_return report, time limits, an unknown game's one line, the missing extra."""

import sys

import numpy as np
import pytest
from gymnasium.wrappers import ClipReward

from sac_runner.config import EnvConfig
from sac_runner.errors import EnvError
from sac_runner.run.envs import make_env
from sac_runner.run.run_config import to_run_config
from sac_runner.run.vector_env import VectorEnvs
from tests.harness import compose

pytest.importorskip("ale_py")

PONG = "ALE/Pong-v5"


def ale(env):
    return env.unwrapped.ale


def play(env, actions, seed=0):
    """Reset with `seed`, then take `actions` until the episode ends: (reward, terminated, truncated, info)
    of each step taken."""
    env.reset(seed=seed)
    steps = []
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        steps.append((reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return steps


def random_actions(env, n, seed=0):
    return np.random.default_rng(seed).integers(env.action_space.n, size=n)


def test_env_atari_composes_the_preprocessing():
    env = to_run_config(compose("env=atari", "env.id=ALE/Breakout-v5")).env
    assert (env.id, env.is_atari, env.observes_pixels) == ("ALE/Breakout-v5", True, True)
    assert (env.frames_per_observation, env.env_steps_per_agent_step, env.image_size, env.noop_max) == (4, 4, 84, 30)
    assert env.terminal_on_life_loss and env.clip_rewards


def test_observations_are_four_stacked_uint8_frames_channels_first():
    env = make_env(EnvConfig(id=PONG), seed=0)
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    obs, *_ = env.step(0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    small = make_env(EnvConfig(id=PONG, image_size=64, frame_stack=2))
    assert small.observation_space.shape == (2, 64, 64)
    env.close()
    small.close()


def test_the_newest_frame_is_last_and_a_reset_fills_the_stack_with_its_frame():
    env = make_env(EnvConfig(id=PONG), seed=0)
    obs, _ = env.reset(seed=0)
    assert all(np.array_equal(frame, obs[0]) for frame in obs)
    changed = 0
    for action in random_actions(env, 30):
        new, *_ = env.step(action)
        assert np.array_equal(new[:-1], obs[1:])  # the stack moves up by one, the new frame comes in last
        changed += not np.array_equal(new[-1], obs[-1])
        obs = new
    assert changed > 0
    env.close()


@pytest.mark.parametrize("action_repeat, frames", [(None, 4), (2, 2)])
def test_one_agent_step_advances_the_emulator_by_the_frame_skip(action_repeat, frames):
    env = make_env(EnvConfig(id=PONG, action_repeat=action_repeat, noop_max=0))
    env.reset(seed=0)
    assert ale(env).getEpisodeFrameNumber() == 0
    for step in range(1, 6):
        env.step(0)
        assert ale(env).getEpisodeFrameNumber() == step * frames
    env.close()


def test_a_frame_is_the_grey_max_of_the_last_two_emulator_frames_resized():
    """DQN's preprocessing, checked against the emulator stepped by hand (no sticky actions, no no-ops)."""
    import cv2
    import gymnasium as gym

    env = make_env(EnvConfig(id=PONG, noop_max=0, kwargs={"repeat_action_probability": 0.0}))
    emulator = gym.make(PONG, frameskip=1, repeat_action_probability=0.0)
    env.reset(seed=0)
    emulator.reset(seed=0)
    pooled = 0
    for action in random_actions(env, 40):
        obs, *_ = env.step(action)
        frames = []
        for _ in range(4):
            emulator.step(action)
            frames.append(ale(emulator).getScreenGrayscale())
        expected = cv2.resize(np.maximum(frames[-2], frames[-1]), (84, 84), interpolation=cv2.INTER_AREA)
        assert np.array_equal(obs[-1], expected)
        pooled += not np.array_equal(expected, cv2.resize(frames[-1], (84, 84), interpolation=cv2.INTER_AREA))
    assert pooled > 0  # the max shows what the last frame alone does not
    env.close()
    emulator.close()


def test_a_reset_takes_one_to_noop_max_noops():
    env = make_env(EnvConfig(id=PONG, noop_max=30))
    starts = set()
    for seed in range(8):
        env.reset(seed=seed)
        starts.add(ale(env).getEpisodeFrameNumber())
    assert min(starts) >= 1 and max(starts) <= 30 and len(starts) > 1
    env.close()


def test_rewards_are_clipped_for_learning_only_and_the_episode_return_is_the_game_score():
    """The same seeded game played twice: the training environment's rewards are the evaluation one's,
    clipped to [-1, 1]; both record the game's score as the episode's return."""
    cfg = EnvConfig(id="ALE/SpaceInvaders-v5", clip_rewards=True, kwargs={"max_num_frames_per_episode": 800})
    training, evaluation = make_env(cfg, for_training=True), make_env(cfg)
    actions = random_actions(training, 300)
    learned, scored = play(training, actions), play(evaluation, actions)
    assert len(learned) == len(scored) and learned[-1][2] and scored[-1][2]  # truncated after 800 frames
    raw = np.array([reward for reward, *_ in scored])
    assert raw.max() > 1  # invaders are worth 5 to 30 points
    assert np.array_equal([reward for reward, *_ in learned], np.clip(raw, -1, 1))
    assert learned[-1][3]["episode"]["r"] == scored[-1][3]["episode"]["r"] == raw.sum()
    training.close()
    evaluation.close()


@pytest.mark.parametrize("terminal_on_life_loss", [True, False])
def test_a_lost_life_ends_the_episode_for_learning_only(terminal_on_life_loss):
    """The same seeded game played twice, up to the step the first life is lost."""
    cfg = EnvConfig(id="ALE/Breakout-v5", terminal_on_life_loss=terminal_on_life_loss)
    training, evaluation = make_env(cfg, for_training=True), make_env(cfg)
    actions = random_actions(training, 200)
    evaluation.reset(seed=0)
    for step, action in enumerate(actions, start=1):
        _, _, terminated, truncated, _ = evaluation.step(action)
        assert not (terminated or truncated)  # evaluation plays on
        if ale(evaluation).lives() < 5:
            break
    assert ale(evaluation).lives() == 4
    learned = play(training, actions[:step])
    assert len(learned) == step and ale(training).lives() == 4
    if terminal_on_life_loss:
        assert learned[-1][1] and learned[-1][3]["episode"]["l"] == step  # the training episode: one life
        training.reset()
        assert ale(training).lives() == 5  # the next episode is a new game
    else:
        assert not any(terminated for _, terminated, *_ in learned)
    training.close()
    evaluation.close()


def test_the_training_environments_are_built_for_learning():
    envs = VectorEnvs(EnvConfig(id=PONG, clip_rewards=True))
    assert isinstance(envs.vector.envs[0], ClipReward)
    envs.close()
    evaluation = make_env(EnvConfig(id=PONG, clip_rewards=True))
    assert not isinstance(evaluation, ClipReward)
    evaluation.close()


def test_time_limits_are_truncations_and_max_episode_steps_counts_agent_steps():
    env = make_env(EnvConfig(id=PONG, kwargs={"max_num_frames_per_episode": 400}))  # v5's is 108,000
    steps = play(env, [0] * 200)
    assert len(steps) in range(93, 101) and steps[-1][2] and not steps[-1][1]  # 400 frames, less the no-ops
    env = make_env(EnvConfig(id=PONG, max_episode_steps=7))
    steps = play(env, [0] * 20)
    assert len(steps) == 7 and steps[-1][2] and not steps[-1][1]
    env.close()


def test_frameskip_in_kwargs_is_refused_for_action_repeat():
    with pytest.raises(EnvError, match="env.kwargs.frameskip is not used for Atari.*set env.action_repeat"):
        make_env(EnvConfig(id=PONG, kwargs={"frameskip": 4}))


def test_an_unknown_game_is_one_line_with_the_closest_ids():
    with pytest.raises(EnvError) as refused:
        make_env(EnvConfig(id="ALE/Pongg-v5"))
    assert str(refused.value) == ("unknown environment id 'ALE/Pongg-v5'; did you mean ALE/Pong-v5, ALE/Pooyan-v5, "
                                  "ALE/Boxing-v5? (env.id=...)")


def test_without_the_extra_the_fix_is_named(monkeypatch):
    import gymnasium

    registry = {k: v for k, v in gymnasium.registry.items() if not k.startswith("ALE/")}
    monkeypatch.setattr(gymnasium, "registry", registry)
    monkeypatch.setitem(sys.modules, "ale_py", None)  # import ale_py fails
    with pytest.raises(EnvError) as refused:
        make_env(EnvConfig(id=PONG))
    assert str(refused.value) == "env=atari needs the atari extra: pip install 'sac-runner[atari]'"


def test_discrete_sac_learns_from_atari_frames_through_the_nature_encoder(tmp_path):
    """A few hundred frames of Pong with agent=sac_discrete_atari: the Nature encoder, the frame buffer
    and discrete SAC's update run together, and the run counts frames (4 per agent step)."""
    from tests.harness import QUIET, metric_records, train_tiny
    tiny = train_tiny(tmp_path, "env=atari", "agent=sac_discrete_atari", *QUIET, "schedule.start_steps=200",
                      "schedule.update_after=200", "schedule.total_steps=800", "schedule.eval_every=800",
                      "schedule.eval_episodes=1", "schedule.batch_size=16", "env.max_episode_steps=100")
    assert type(tiny.parts.agent.encoder).__name__ == "NatureEncoder" and tiny.parts.spaces.discrete
    assert len(tiny.parts.buffer) <= 200 and tiny.parts.buffer.obs.shape[1:] == (1, 84, 84)
    assert tiny.parts.agent.num_updates == (200 - 50) // 4 + 1  # an update every 4 agent steps from frame 200
    assert any("train/critic_loss" in r for r in metric_records(tmp_path))
