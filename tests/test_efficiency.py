"""HAPO's sample-efficiency mechanisms, each to its exact rule: the horizon cut, kept and
replayed teacher episodes, per-iteration forgetting, failed-step subsampling, and the paper's
configuration beside the recommended one."""

import dataclasses
import math

import numpy as np
import pytest
import torch as th

from hapo_rl import HAPO
from hapo_rl.algos.grpo import step_weights
from hapo_rl.core.config import HAPOConfig
from hapo_rl.core.envpool import EnvPool
from hapo_rl.core.gate import BetaGate
from hapo_rl.core.rollout import collect_episodes
from hapo_rl.core.tasks import Task
from hapo_rl.methods import METHODS, PAPER
from tests.test_hapo import ENV, SMALL, failed_group
from tests.tiny import LeftTeacher, RightTeacher

TEACHER_LENGTH = 12  # RightTeacher walks the 12 cells of the corridor


def model(**settings):
    return HAPO(ENV, teacher=RightTeacher(), seed=0, **{**SMALL, **settings})


def test_horizon_cut_limits_the_episodes_of_gated_start_states_only():
    hapo = model(gate="always", horizon_cut=1.5, teacher_reuse=True)
    horizons, steps = hapo._horizons(np.array([3, 4]))
    assert horizons == [math.ceil(1.5 * TEACHER_LENGTH)] * 2
    assert steps == 2 * TEACHER_LENGTH  # the teacher ran first, charged
    assert hapo._horizons(np.array([3, 4])) == (horizons, 0)  # kept: not charged again
    shut = model(gate="never", horizon_cut=1.5)
    assert shut._horizons(np.array([3])) == ([None], 0)
    assert model(gate="always", horizon_cut=0.0)._horizons(np.array([3])) == (None, 0)


def test_a_start_state_whose_teacher_fails_keeps_the_full_horizon():
    hapo = HAPO(ENV, teacher=LeftTeacher(), seed=0, gate="always", horizon_cut=2.0, **SMALL)
    horizons, steps = hapo._horizons(np.array([3]))
    assert horizons == [None] and steps == 14  # charged, nothing kept
    assert 3 not in hapo.kept_actions


def test_episodes_stop_at_their_horizon_as_failures():
    task = Task(ENV, n_train=4)
    pool = EnvPool(task.make)
    th.manual_seed(0)
    episodes = collect_episodes(pool, [0, 1, 2], model().policy, horizons=[3, None, 5])
    assert [e.length for e in episodes] == [3, 14, 5]
    assert not any(e.success or e.terminated or e.cut for e in episodes)


def test_teacher_reuse_injects_the_kept_episode_without_charge():
    hapo = model(gate="always", teacher_reuse=True)
    _, first = hapo._augment_groups([failed_group(5)])
    groups, again = hapo._augment_groups([failed_group(5)])
    assert (first, again) == (TEACHER_LENGTH, 0)
    assert groups[0][0] is hapo._kept[5] and groups[0][0].success
    fresh = model(gate="always", teacher_reuse=False)
    assert [fresh._augment_groups([failed_group(5)])[1] for _ in range(2)] == [12, 12]


def test_replay_takes_kept_episodes_of_other_open_states_with_their_advantage():
    hapo = model(gate="always", teacher_reuse=True, teacher_replay=2)
    groups, _ = hapo._augment_groups([failed_group(k) for k in (1, 2, 3)])
    adv = [np.array([2.5, -1, -1, -1]), np.array([1.5, -1, -1, -1]), np.array([0.5, 0, 0, 0])]
    assert hapo._replays(groups, adv) == []  # every kept state was drawn: nothing to replay
    assert hapo.kept_advantage == {1: 2.5, 2: 1.5, 3: 0.5}
    replays = hapo._replays([failed_group(3)], [np.zeros(4)])
    assert len(replays) == 2  # bounded, and never the state drawn now
    assert {e.seed for e, _ in replays} == {1, 2}
    assert all(a == hapo.kept_advantage[e.seed] and e.from_teacher for e, a in replays)
    shut = model(gate="never", teacher_reuse=True, teacher_replay=2)
    shut.kept_actions[1], shut.kept_advantage[1] = np.ones(12, np.int64), 2.5
    assert shut._replays([failed_group(3)], [np.zeros(4)]) == []


def test_replay_offers_r_kept_states_and_each_replays_as_often_as_its_gate_is_open():
    hapo = model(gate_prior="uniform", teacher_reuse=True, teacher_replay=8)
    for k in range(40):  # Beta(1, 1) posteriors: open with probability P(p < 0.5) = 0.5
        hapo.kept_actions[k], hapo.kept_advantage[k] = np.ones(12, np.int64), 2.0
    counts = [len(hapo._replays([failed_group(99)], [np.zeros(4)])) for _ in range(400)]
    assert max(counts) <= 8
    assert np.mean(counts) == pytest.approx(8 * 0.5, abs=0.3)


def test_the_cut_and_replay_follow_the_posterior_whatever_decides_injection():
    for settings in ({"gate": "always"}, {"mix_every_group": True, "gate": "fixed"}):
        hapo = model(**settings, horizon_cut=2.0, teacher_reuse=True, teacher_replay=4)
        hapo._augment_groups([failed_group(3)])
        hapo.kept_advantage[3] = 2.0
        assert hapo._horizons(np.array([3]))[0] == [24]
        for _ in range(5):  # the policy now succeeds from start state 3
            hapo.gate.update(3, successes=8, failures=0)
        assert hapo._horizons(np.array([3]))[0] == [None]
        assert hapo._replays([failed_group(9)], [np.zeros(4)]) == []
    never = model(gate="never", horizon_cut=2.0)
    assert never._horizons(np.array([3])) == ([None], 0)  # never runs the teacher


def test_replayed_episodes_join_the_update_at_no_env_cost():
    hapo = model(gate="always", teacher_reuse=True, teacher_replay=4)
    hapo._augment_groups([failed_group(k) for k in range(20, 24)])
    for k in range(20, 24):
        hapo.kept_advantage[k] = 2.0
    attempts = hapo.teacher_attempts
    stats = hapo._learn_from_groups([failed_group(1)], 56, 0, 0.0)
    assert stats.replayed_episodes == 4 and stats.env_steps == 56
    assert stats.teacher_step_share == 1.0  # the failed group alone has zero advantages
    assert hapo.teacher_attempts == attempts  # the teacher did not run


def test_kept_episodes_survive_a_checkpoint_and_are_not_charged_again(tmp_path):
    hapo = model(gate="always", teacher_reuse=True, teacher_replay=2)
    hapo._augment_groups([failed_group(5)])
    hapo.kept_advantage[5] = 2.5
    hapo.save(tmp_path / "m.zip")
    loaded = HAPO.load(tmp_path / "m.zip")
    assert loaded._kept == {} and list(loaded.kept_actions) == [5]
    assert loaded.kept_advantage == hapo.kept_advantage  # int keys, not JSON's strings
    groups, steps = loaded._augment_groups([failed_group(5)])
    assert steps == 0 and groups[0][0].success
    np.testing.assert_array_equal(groups[0][0].obs, hapo._kept[5].obs)


def test_forgetting_per_iteration_reverts_unvisited_states_to_the_prior():
    gate = BetaGate(forgetting=0.5, forget_by="iteration")
    gate.update(3, successes=0, failures=8)
    assert gate.posterior(3) == (1.0, 9.0)  # no discount at the visit itself
    gate.tick()
    gate.tick()
    assert gate.posterior(3) == pytest.approx((0.25 * 1 + 0.75 * 1, 0.25 * 9 + 0.75 * 1))
    gate.update(3, successes=8, failures=0)
    assert gate.posterior(3) == pytest.approx((1.0 + 8, 3.0))
    visit = BetaGate(forgetting=0.5)
    visit.update(3, 0, 8)
    visit.tick()
    assert visit.posterior(3) == (0.5, 8.5)  # per visit: a tick changes nothing


def test_per_iteration_forgetting_shuts_stale_gates_once_the_policy_succeeds():
    gate = BetaGate(forgetting=0.9, forget_by="iteration", prior="empirical")
    gate.update(7, successes=0, failures=8)  # an early failure, never revisited
    assert gate.injection_probability(7) > 0.99
    for _ in range(60):  # the policy now succeeds on every other start state
        gate.tick()
        gate.update(100, successes=8, failures=0)
    assert gate.injection_probability(7) < 0.05
    stale = BetaGate(forgetting=0.9, prior="empirical")
    stale.update(7, successes=0, failures=8)
    for _ in range(60):
        stale.tick()
        stale.update(100, successes=8, failures=0)
    assert stale.injection_probability(7) > 0.99  # per visit: the old verdict stays


def test_step_weights_keep_the_expected_weights():
    lengths, failed = [4, 6, 2], [True, False, True]
    keep, w = step_weights(lengths, failed, "episode")
    assert keep.all()
    np.testing.assert_allclose(w, [0.25] * 4 + [1 / 6] * 6 + [0.5] * 2)
    rng = np.random.default_rng(0)
    total = np.zeros(12)
    n = 4000
    for _ in range(n):
        keep, w = step_weights(lengths, failed, "episode", 0.25, rng)
        assert keep[4:10].all()  # steps of episodes that did not fail are always kept
        total[keep] += w
    np.testing.assert_allclose(total / n, [0.25] * 4 + [1 / 6] * 6 + [0.5] * 2, rtol=0.1)
    _, w = step_weights([3], [False], "step")
    np.testing.assert_array_equal(w, [1.0, 1.0, 1.0])


#: Every setting of hapo as it was before this project's mechanisms (the committed
#: experiments' hapo), plus those mechanisms switched off: hapo-paper must stay exactly this.
BEFORE = {
    "group_size": 8, "groups_per_iter": 16, "n_train_seeds": 500, "learning_rate": 3e-4,
    "n_epochs": 2, "batch_size": 256, "clip_range": 0.2, "ent_coef": 0.01, "max_grad_norm": 0.5,
    "adv_baseline": "mean", "adv_scale": "std", "loss_agg": "episode", "gate": "thompson",
    "tau": 0.5, "adaptive_tau": False, "forgetting": 0.9, "gate_key": "start_state",
    "gate_prior": "uniform", "fixed_prob": 0.5, "n_inject": 1, "mix_every_group": False,
    "teacher_loss": "shaping", "shaping_gamma": 0.1, "warm_start_demos": 0,
    "shaping_box": 0.05,  # added since: on continuous actions the box, not the density
    "warm_start_epochs": 20, "warm_start_noise": 0.0, "teacher_epsilon": 0.0, "teacher_detour": 0.0,
    "teacher_coverage": 1.0, "teacher_fail": 0.0, "teacher_detour_stops": 1,
    "horizon_cut": 0.0, "teacher_reuse": False, "teacher_replay": 0, "forget_by": "visit",
    "fail_step_frac": 1.0,
}  # fmt: skip


def test_hapo_paper_is_hapo_as_it_was():
    paper = METHODS["hapo-paper"]
    assert dataclasses.asdict(HAPOConfig(**paper.settings("hapo-paper", {}))) == BEFORE


def test_hapo_paper_is_fixed_to_the_paper_and_hapo_is_not():
    paper = METHODS["hapo-paper"]
    assert paper.settings("hapo-paper", {})["horizon_cut"] == 0.0
    for key, value in PAPER.items():
        assert paper.settings("hapo-paper", {})[key] == value
    with pytest.raises(ValueError, match="hapo-paper means --teacher-replay"):
        paper.settings("hapo-paper", {"teacher_replay": 4}, lambda k: "--" + k.replace("_", "-"))
    assert METHODS["hapo"].settings("hapo", {"teacher_replay": 4})["teacher_replay"] == 4


def test_hapo_learns_a_long_sparse_task_in_fewer_env_steps_than_hapo_paper():
    """ResetCorridor: failing episodes run ten times the teacher's length, where the horizon
    cut and replay pay off; at 10k env steps hapo succeeds and hapo-paper mostly does not."""
    env, teacher = "tests.tiny:ResetCorridor-v0", RightTeacher()
    ours = HAPO(env, teacher=teacher, seed=0, **SMALL).learn(10_000)
    paper_settings = METHODS["hapo-paper"].settings("hapo-paper", SMALL)
    paper = HAPO(env, teacher=teacher, seed=0, **paper_settings).learn(10_000)
    assert ours.evaluate(100)["success_rate"] >= 0.9
    assert ours.evaluate(100, deterministic=True)["success_rate"] >= 0.9
    assert paper.evaluate(100)["success_rate"] <= 0.3
