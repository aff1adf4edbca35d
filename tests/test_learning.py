"""Learning tests: fixed seeds and budgets with a wide margin (Pendulum is solved near -150)."""

import json

import pytest

from sac_runner.run.run_dir import RunDir
from sac_runner.run.training import train
from tests.harness import QUIET, compose

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("variant", ["agent.value_network=false", "agent.value_network=true"],
                         ids=["sac_2019", "sac_2018_value_network"])
def test_pendulum_learns(tmp_path, variant):
    cfg = compose(*QUIET, "env=pendulum", variant, "seed=0", "schedule.total_steps=10_000",
                  "schedule.eval_every=10_000", "schedule.checkpoint_every=10_000")
    final = train(cfg, tmp_path)
    assert final["eval/return_mean"] >= -250, final


@pytest.mark.parametrize("objective", ["minimize", "maximize"])
def test_objective_minimize_reduces_a_cost(tmp_path, objective):
    # CostBandit's signal is (a - 0.5)^2: minimizing drives it to 0. Maximizing pushes the action toward
    # -1 (cost 2.25), though the entropy bonus keeps the policy mean off the bound (about 1.5 here);
    # a uniform random policy scores 1/3 + 1/4 = 0.58 on average.
    cfg = compose(*QUIET, "env.id=CostBandit-v0", f"agent.objective={objective}", "seed=0",
                  "agent.hidden_sizes=[32,32]", "schedule.total_steps=1500", "schedule.start_steps=200",
                  "schedule.update_after=200", "schedule.batch_size=64", "schedule.eval_every=1500",
                  "schedule.eval_episodes=3", "schedule.checkpoint_every=1500")
    cost = train(cfg, tmp_path)["eval/return_mean"]
    if objective == "minimize":
        assert cost < 0.02, cost
    else:
        assert cost > 1.0, cost


def test_cartpole_discrete_sac_learns(tmp_path):
    # Discrete SAC, chosen from CartPole's Discrete(2) action space; the issue asks for 400 within 50k.
    # Measured with this install (gymnasium 1.4, numpy 2.4, torch 2.13; the same at 1 and 2 threads),
    # evaluation every 2.5k: seed 2 scores 327.7 at 22.5k (the budget used before, where it once
    # scored 500), 499.3 at 25k and 500 at 27.5k and 30k; seed 0 stays above 400 from 20k (500 at 30k);
    # seed 1 hovers at 300-390 up to 30k. One seed's trajectory moves with library versions and
    # float rounding, hence a budget where seed 2 has been at the maximum for a while.
    cfg = compose(*QUIET, "env=cartpole", "seed=2", "schedule.total_steps=27_500", "schedule.eval_every=27_500",
                  "schedule.checkpoint_every=27_500")
    final = train(cfg, tmp_path)
    assert final["eval/return_mean"] >= 400, final


def test_crossq_beats_sac_on_pendulum_at_a_small_budget(tmp_path):
    # agent=crossq_small (Batch Renorm critics and actor, no target network, lr 1e-3, Adam beta1 0.5,
    # the actor every 3rd step) against agent=sac, both with 1000 random steps and 1000 gradient steps.
    # Measured (evaluation every 1000 steps, 5 episodes; seeds 0, 1, 2), return at 2000 steps:
    # crossq_small -151, -475, -805; sac -1691, -1684, -1719 (sac reaches -150 to -200 at 5000, crossq_small
    # at 2000 to 4000). Every CrossQ seed is at least 879 above every SAC seed; seed 0 here.
    returns = {}
    for agent in ("crossq_small", "sac"):
        cfg = compose(*QUIET, "env=pendulum", f"agent={agent}", "seed=0", "schedule.total_steps=2000",
                      "schedule.start_steps=1000", "schedule.update_after=1000", "schedule.eval_every=2000",
                      "schedule.eval_episodes=5", "schedule.checkpoint_every=2000")
        returns[agent] = train(cfg, tmp_path / agent)["eval/return_mean"]
    assert returns["crossq_small"] >= returns["sac"] + 500, returns

# What device=auto picks on a GPU, spelled out.
ON_GPU_FAST_PATH = (*(o for o in QUIET if not o.startswith("device=")), "device=cuda", "agent.compile=cudagraphs",
                    "buffer.device=cuda")


@pytest.mark.gpu
def test_pendulum_learns_on_the_gpu_fast_path(tmp_path):
    """The compiled, graph-captured update with the replay buffer on the GPU learns as the eager one does."""
    cfg = compose(*ON_GPU_FAST_PATH, "env=pendulum", "seed=0", "schedule.total_steps=10_000",
                  "schedule.eval_every=10_000", "schedule.checkpoint_every=10_000")
    assert train(cfg, tmp_path)["eval/return_mean"] >= -250


@pytest.mark.gpu
def test_cartpole_learns_on_the_gpu_fast_path(tmp_path):
    cfg = compose(*ON_GPU_FAST_PATH, "env=cartpole", "seed=2", "schedule.total_steps=27_500",
                  "schedule.eval_every=27_500", "schedule.checkpoint_every=27_500")
    assert train(cfg, tmp_path)["eval/return_mean"] >= 400


def test_a_critic_learning_rate_grown_far_too_high_raises_critic_alerts_and_rollback_ends_better(tmp_path):
    # A decay schedule set the wrong way round: the critic's learning rate climbs linearly from 3e-4 to
    # 1.0 over the run. Measured (64x64 networks, evaluation every 1000 steps, patience 2): seed 0 learns
    # (-130.5 at 5000), its critic goes 82% dormant by 3000 and the run collapses from 7000 on (-955.1
    # at 14000 with warn); rollback restores the 5000-step agent at 8000 with the learning rates halved
    # and ends at -128.4. Seed 1: -1557.8 with warn, -165.6 with rollback; seed 2 never collapses.
    failing = (*QUIET, "threads=1", "env=pendulum", "seed=0", "agent.hidden_sizes=[64,64]",
               "agent.critic_lr_decay=linear", "agent.critic_lr_final=1.0", "schedule.total_steps=14_000",
               "schedule.eval_every=1000", "schedule.eval_episodes=3", "schedule.checkpoint_every=14_000",
               "health.patience=2")
    warned = train(compose(*failing, "health.on_collapse=warn"), tmp_path / "warn")
    alerts = [json.loads(line) for line in RunDir(tmp_path / "warn").alerts.read_text().splitlines()]
    assert any(a["kind"] == "dormant_critic" and a["step"] <= 3000 for a in alerts), alerts  # within 3 evaluations
    assert any(a["kind"] == "collapse" for a in alerts), alerts
    rolled_back = train(compose(*failing, "health.on_collapse=rollback"), tmp_path / "rollback")
    assert rolled_back["health/rollbacks"] >= 1
    assert rolled_back["eval/return_mean"] > warned["eval/return_mean"] + 300, (rolled_back, warned)
