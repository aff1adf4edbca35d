"""Atari 2600 games through ale-py (env=atari): ALE/<Game>-v5 with the DQN preprocessing, as the discrete
SAC experiments (Christodoulou, 2019) used it.

What Christodoulou (2019) ran: 20 games for 100k agent steps, evaluated as Kaiser et al. (2020) do
(his dissertation, section 4.3), rewards clipped to [-1, 1] (its Table 10), and,
in the Atari code he published with it (p-christ/Action-Grammar-Reinforcement-Learning,
environments/Atari_Environments.py), gym's <Game>Deterministic-v4 (a fixed frame skip of 4, no sticky
actions), 84x84 grey frames, 4 stacked, a lost life terminal in the training environment only, a
27,000-step time limit, and 1 to 30 no-ops before each evaluation episode. Here:

- Frame skip 4 with max-pooling (Mnih et al., 2015): each agent step repeats the action for
  env.action_repeat frames (null: 4), sums their rewards and keeps the pixel-wise max of the last two
  frames, since some games draw sprites on alternate frames. gymnasium's AtariPreprocessing does this
  on an emulator that steps one frame at a time, so v5's own frameskip of 4 is set to 1 here (the two
  would multiply to 16 frames per step; AtariPreprocessing refuses an env that already skips).
  Deterministic-v4 skips inside ALE, without the max.
- Grey frames resized to env.image_size (84) with OpenCV's INTER_AREA, the last env.frame_stack (null:
  4) stacked channels first, newest last: uint8 (4, 84, 84). A reset fills the stack with its frame.
- 1 to env.noop_max (30) no-ops at every reset, drawn from the environment's seeded RNG (Mnih et al.,
  2015's evaluation starts; Christodoulou's evaluation did the same).
- Sticky actions: v5's registered 0.25 is kept, the protocol Machado et al. (2018) recommend
  (each emulator frame repeats the previous action with that probability, so no policy can replay a
  memorized action sequence). Christodoulou's Deterministic-v4 had none; env.kwargs
  .repeat_action_probability=0 reproduces that.
- For learning only (the training environment, make_env(for_training=True)):
  env.terminal_on_life_loss ends the episode when a life is lost, and, as in gymnasium's
  AtariPreprocessing and Christodoulou's code, the next reset starts a new game (DeepMind's
  EpisodicLifeEnv plays the game on instead; that needs the loop to tell a learning terminal from the
  end of an episode). Machado et al. (2018) advise against it: it is game-specific knowledge.
  env.clip_rewards clips rewards to [-1, 1] (Mnih et al., 2015; the sign, as Atari rewards are whole
  numbers) outside RecordEpisodeStatistics, so train/episode_return stays the game's score; the
  evaluation environment never clips and never ends at a lost life: eval/return is the game score.
- The time limit: v5's 108,000 frames (27,000 agent steps, 30 minutes of play at 60 frames a second),
  reported as a truncation. env.max_episode_steps, if set, counts agent steps.
- No FIRE at reset (baselines' FireResetEnv, which Christodoulou's code had): the agent learns to press
  it, without the game-specific knowledge Machado et al. (2018) advise against. The minimal action set
  (v5's default).

Atari 100k (Kaiser et al., 2020) is 100k agent steps, 400k frames: the schedule counts frames
(schedule.total_steps=400000).
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.wrappers import AtariPreprocessing, ClipReward, FrameStackObservation, TimeLimit

from sac_runner.config import ATARI_PREFIX, EnvConfig
from sac_runner.errors import EnvError

ATARI_EXTRA_MISSING = "env=atari needs the atari extra: pip install 'sac-runner[atari]'"


def register_atari() -> None:
    """ale-py's ALE/<Game>-v5 ids in gymnasium's registry: gymnasium 1.x loads no plugins."""
    if any(env_id.startswith(ATARI_PREFIX) for env_id in gym.registry):
        return
    try:
        import ale_py
        import cv2  # noqa: F401  (AtariPreprocessing resizes with it)
    except ImportError as error:
        raise EnvError(ATARI_EXTRA_MISSING) from error
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stderr for each game built
    gym.register_envs(ale_py)


def atari_env(cfg: EnvConfig, render_mode: str | None = None, for_training: bool = False) -> gym.Env:
    """The game cfg.id names, preprocessed: uint8 observations (frames, image_size, image_size)."""
    if "frameskip" in cfg.kwargs:
        raise EnvError("env.kwargs.frameskip is not used for Atari (frames are skipped after the emulator "
                       "steps, with max-pooling); set env.action_repeat=<frames per agent step> instead")
    kwargs = {**cfg.kwargs, "frameskip": 1}
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(cfg.id, **kwargs)
    env = AtariPreprocessing(env, noop_max=cfg.noop_max, frame_skip=cfg.env_steps_per_agent_step,
                             screen_size=cfg.image_size,
                             terminal_on_life_loss=for_training and cfg.terminal_on_life_loss)
    env = FrameStackObservation(env, cfg.frames_per_observation)  # padding: the reset frame, repeated
    if cfg.max_episode_steps is not None:
        env = TimeLimit(env, cfg.max_episode_steps)
    return env


def for_learning(env: gym.Env, cfg: EnvConfig) -> gym.Env:
    """The training environment's rewards, clipped for learning (env.clip_rewards); wraps the agent's
    environment, outside RecordEpisodeStatistics, which keeps the game's score."""
    return ClipReward(env, -1.0, 1.0) if cfg.clip_rewards else env
