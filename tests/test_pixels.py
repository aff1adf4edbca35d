"""Image observations on the agent's side: the encoders, DrQ's shift by hand, who trains the encoder,
the target encoder's rate, and the environment steps an action repeat counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sac_runner.algo.discrete_sac import DiscreteSAC
from sac_runner.algo.encoders import DrQEncoder, NatureEncoder, random_shift
from sac_runner.algo.replay_buffer import Batch
from sac_runner.algo.sac import SAC
from sac_runner.config import AgentConfig, EnvConfig, RunConfig, ScheduleConfig
from sac_runner.errors import ConfigError
from sac_runner.run.cadence import Cadence

IMAGE = (6, 64, 64)  # two stacked RGB frames of the smallest size the encoders take


def pixel_batch(batch_size: int = 8, action_dim: int = 2, discrete: bool = False, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    frames = lambda: torch.randint(0, 256, (batch_size, *IMAGE), generator=g, dtype=torch.uint8)  # noqa: E731
    action = (torch.randint(0, action_dim, (batch_size,), generator=g).float() if discrete
              else torch.rand(batch_size, action_dim, generator=g) * 2 - 1)
    return Batch(frames(), action, torch.rand(batch_size, generator=g), frames(), torch.zeros(batch_size))


def small_agent(**overrides) -> SAC:
    torch.manual_seed(0)
    cfg = AgentConfig(**{"hidden_sizes": [32, 32], "feature_dim": 16, **overrides})
    return SAC(IMAGE, 2, cfg, torch.device("cpu"))


def test_the_drq_encoder_has_the_papers_shape():
    encoder = DrQEncoder((9, 84, 84), feature_dim=50)
    convs = [m for m in encoder.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (3, 3), (2, 2))] + [(32, (3, 3), (1, 1))] * 3
    assert encoder.head[0].in_features == 32 * 35 * 35  # 84 -> 41 -> 39 -> 37 -> 35
    features = encoder(torch.randint(0, 256, (4, 9, 84, 84), dtype=torch.uint8))
    assert features.shape == (4, 50) and features.abs().max() <= 1  # tanh after LayerNorm
    assert NatureEncoder((4, 84, 84)).out_dim == 64 * 7 * 7  # 84 -> 20 -> 9 -> 7


def test_agent_feature_dim_sizes_the_drq_encoders_output():
    agent = small_agent(feature_dim=12)
    assert agent.encoder.out_dim == 12 and agent.encoder.head[0].out_features == 12


def test_the_encoders_scale_uint8_frames_themselves():
    encoder = DrQEncoder(IMAGE, 8)
    frames = torch.randint(0, 256, (3, *IMAGE), dtype=torch.uint8)
    assert torch.equal(encoder(frames), encoder(frames.float()))  # 0..255 as uint8 or float: the same features


def test_random_shift_is_replicate_padding_then_a_random_crop():
    obs = torch.randint(0, 256, (5, 3, 10, 12), dtype=torch.uint8)
    torch.manual_seed(3)
    shifted = random_shift(obs, pad=4)
    torch.manual_seed(3)
    offsets = torch.randint(0, 9, (2, 5, 1))  # the draws random_shift makes: dy, dx per sample
    padded = F.pad(obs.float(), (4, 4, 4, 4), mode="replicate")
    for i in range(5):
        dy, dx = int(offsets[0, i]), int(offsets[1, i])
        assert torch.equal(shifted[i], padded[i, :, dy:dy + 10, dx:dx + 12].to(torch.uint8))
    assert shifted.dtype == torch.uint8 and not torch.equal(shifted, obs)


def test_random_shift_without_displacement_is_the_identity():
    obs = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(random_shift(obs, pad=0), obs)


@pytest.mark.parametrize("agent_class, discrete", [(SAC, False), (DiscreteSAC, True)])
def test_the_critic_loss_alone_trains_the_encoder(agent_class, discrete):
    torch.manual_seed(0)
    agent = agent_class(IMAGE, 3 if discrete else 2, AgentConfig(hidden_sizes=[32], feature_dim=16), torch.device("cpu"))
    encoder_params = set(map(id, agent.encoder.parameters()))
    actor_optimized = {id(p) for group in agent.actor_optimizer.param_groups for p in group["params"]}
    critic_optimized = {id(p) for group in agent.critic_optimizer.param_groups for p in group["params"]}
    assert encoder_params <= critic_optimized and not encoder_params & actor_optimized
    batch = pixel_batch(action_dim=3 if discrete else 2, discrete=discrete)
    actor_loss, _ = agent._actor_loss(batch.obs, agent.alpha)
    grads = torch.autograd.grad(actor_loss, list(agent.encoder.parameters()), allow_unused=True)
    assert all(g is None for g in grads)  # the actor reads detached features
    q = agent._q_taken(batch.obs, batch.action)
    grads = torch.autograd.grad(q.sum(), list(agent.encoder.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)


def test_an_update_moves_the_encoder_and_its_target_at_encoder_tau():
    agent = small_agent(tau=0.01, encoder_tau=0.05)
    target_before = [p.clone() for p in agent.target.encoder.parameters()]
    head_target_before = [p.clone() for p in agent.target.head.parameters()]
    online_before = [p.clone() for p in agent.encoder.parameters()]
    agent.update(pixel_batch())
    for target, old, online, start in zip(agent.target.encoder.parameters(), target_before, agent.encoder.parameters(),
                                          online_before):
        assert not torch.equal(online, start)  # the critic's step moved the encoder
        torch.testing.assert_close(target, 0.95 * old + 0.05 * online)
    for target, old, online in zip(agent.target.head.parameters(), head_target_before, agent.critic.head.parameters()):
        torch.testing.assert_close(target, 0.99 * old + 0.01 * online)


def test_the_update_augments_observations_and_next_observations_independently(monkeypatch):
    agent = small_agent(augmentation="shift")
    seen = []
    original = agent._learn_q

    def spy(obs, action, reward, next_obs, *rest):
        seen.append((obs.clone(), next_obs.clone()))
        return original(obs, action, reward, next_obs, *rest)

    monkeypatch.setattr(agent, "_learn_q", spy)
    batch = pixel_batch()
    batch = batch._replace(next_obs=batch.obs.clone())  # the same frames in both: the shifts must differ
    agent.update(batch)
    obs, next_obs = seen[0]
    assert not torch.equal(obs, batch.obs) and not torch.equal(obs, next_obs)


def test_the_policy_acts_on_raw_uint8_frames():
    agent = small_agent()
    frames = np.random.default_rng(0).integers(0, 256, (3, *IMAGE), dtype=np.uint8)
    action = agent.act(frames, deterministic=True)
    assert action.shape == (3, 2) and np.all(np.abs(action) <= 1)
    np.testing.assert_array_equal(action, agent.act(frames.astype(np.float32), deterministic=True))


def test_the_2018_value_network_refuses_images():
    with pytest.raises(ValueError, match="value_network"):
        small_agent(value_network=True)


@pytest.mark.parametrize("key, value", [("encoder", "resnet"), ("augmentation", "crop"), ("encoder_tau", 0.0),
                                        ("feature_dim", 0)])
def test_bad_encoder_settings_are_refused_in_one_line(key, value):
    with pytest.raises(ConfigError, match=f"agent.{key}"):
        AgentConfig(**{key: value})


@pytest.mark.parametrize("key, value", [("frame_stack", 0), ("image_size", 32), ("action_repeat", 0)])
def test_bad_pixel_settings_are_refused_in_one_line(key, value):
    with pytest.raises(ConfigError, match=f"env.{key}"):
        EnvConfig(**{key: value})


@pytest.mark.parametrize("task, repeat", [("cartpole-swingup", 8), ("reacher-easy", 4), ("cheetah-run", 4),
                                          ("ball_in_cup-catch", 4), ("walker-walk", 2), ("finger-spin", 2),
                                          ("hopper-hop", 1)])
def test_action_repeat_defaults_to_drqs_per_task_value_from_pixels(task, repeat):
    cfg = EnvConfig(id=f"dm_control/{task}-v0", task=task, pixels=True)
    assert cfg.env_steps_per_agent_step == repeat
    assert EnvConfig(id=f"dm_control/{task}-v0", task=task).env_steps_per_agent_step == 1  # from states
    assert EnvConfig(id=f"dm_control/{task}-v0", task=task, pixels=True, action_repeat=3).env_steps_per_agent_step == 3


def test_with_action_repeat_updates_count_transitions_and_the_schedule_environment_steps():
    run = RunConfig(env=EnvConfig(action_repeat=4),
                    schedule=ScheduleConfig(total_steps=1000, update_after=100, update_every=1, start_steps=0))
    cadence = Cadence(run)
    steps = range(0, 1000, 4)  # one transition = 4 environment steps
    updates = sum(cadence.update_events(before, before + 4) for before in steps)
    assert updates == 250 - 25 + 1  # transitions 25 .. 250 (environment steps 100 .. 1000)
    assert cadence.is_last(1000) and not cadence.is_last(996)


@pytest.mark.parametrize("agent_class, discrete", [(SAC, False), (DiscreteSAC, True)])
def test_the_policy_step_encodes_its_batch_once_and_equals_the_step_on_raw_frames(agent_class, discrete):
    """The actor and the frozen critics read the same detached features: encoding once gives the loss
    (and so the step) that each network encoding the frames itself gives."""
    def make():
        torch.manual_seed(0)
        return agent_class(IMAGE, 3 if discrete else 2, AgentConfig(hidden_sizes=[32], feature_dim=16),
                           torch.device("cpu"))
    once, raw = make(), make()
    batch = pixel_batch(action_dim=3 if discrete else 2, discrete=discrete)
    calls = []
    once.encoder.register_forward_hook(lambda *_: calls.append(1))
    torch.manual_seed(1)
    once._policy_update(batch.obs)
    assert len(calls) == 1
    torch.manual_seed(1)
    _, log_prob = raw._step("actor", lambda: raw._actor_loss(batch.obs, raw.alpha))  # raw frames through both wrappers
    raw._temperature_step(log_prob)
    for a, b in zip(once.actor.parameters(), raw.actor.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(once.log_alpha, raw.log_alpha)


def test_resetting_the_actor_leaves_the_critics_encoder_and_resetting_the_critics_renews_it():
    agent = small_agent()
    encoder = [p.clone() for p in agent.encoder.parameters()]
    actor_head = [p.clone() for p in agent.actor.head.parameters()]
    agent.reset(["actor"])
    assert all(torch.equal(a, b) for a, b in zip(agent.encoder.parameters(), encoder))
    assert not all(torch.equal(a, b) for a, b in zip(agent.actor.head.parameters(), actor_head))
    agent.reset(["critic"])
    assert not all(torch.equal(a, b) for a, b in zip(agent.encoder.parameters(), encoder))
    assert all(torch.equal(t, o) for t, o in zip(agent.target.encoder.parameters(), agent.encoder.parameters()))
