"""SSI, the teacher loss, asymptotic consistency and a tiny learning check on the corridor task."""

import copy

import numpy as np
import pytest
import torch as th

from hapo_rl import GRPO, HAPO
from hapo_rl.algos.guided import TeacherError
from hapo_rl.core.advantages import group_advantages
from hapo_rl.core.rollout import Episode
from tests.tiny import ContinuousRightTeacher, LeftTeacher, RightTeacher

ENV = "tests.tiny:Corridor-v0"
SMALL = dict(group_size=8, groups_per_iter=8, n_train_seeds=32, learning_rate=1e-3)


def failed_group(seed: int, n: int = 4) -> list[Episode]:
    return [
        Episode(
            seed=seed,
            obs=np.zeros((14, 13), np.float32),
            actions=np.zeros(14, np.int64),
            log_probs=np.full(14, -0.69, np.float32),
            rewards=np.zeros(14, np.float32),
            success=False,
            terminated=False,
        )
        for _ in range(n)
    ]


def test_ssi_injects_one_success_into_a_failed_group():
    model = HAPO(ENV, teacher=RightTeacher(), seed=0, gate="always", **SMALL)
    groups, steps = model._augment_groups([failed_group(5)])
    group = groups[0]
    assert [e.from_teacher for e in group] == [True, False, False, False]
    assert [e.success for e in group] == [True, False, False, False]
    assert steps == 12  # the teacher's steps are charged
    adv = group_advantages(np.array([[e.ret for e in group]]))
    assert adv[0, 0] > 0 and np.all(adv[0, 1:] < 0)


def test_gate_that_never_fires_leaves_groups_alone():
    model = HAPO(ENV, teacher=RightTeacher(), seed=0, gate="never", **SMALL)
    groups, steps = model._augment_groups([failed_group(5)])
    assert steps == 0 and not any(e.from_teacher for e in groups[0])


def test_failing_teacher_is_never_injected_and_reported():
    model = HAPO(ENV, teacher=LeftTeacher(), seed=0, gate="always", **SMALL)
    groups, steps = model._augment_groups([failed_group(5)])
    assert not any(e.from_teacher for e in groups[0])
    assert steps == 14
    with pytest.raises(TeacherError, match="never produced a success"):
        for seed in range(30):
            model._augment_groups([failed_group(seed)])


def test_shaping_loss_on_teacher_steps():
    model = HAPO(ENV, teacher=RightTeacher(), seed=0, teacher_loss="shaping", **SMALL)
    actions = th.tensor([1, 0])
    dist = model.policy.get_distribution(th.zeros(2, *model.observation_space.shape))
    logp = th.log(th.tensor([0.5, 0.5]))
    adv = th.tensor([2.0, 2.0])
    loss = model._step_loss(logp, th.zeros(2), adv, th.tensor([True, False]), dist, actions)
    assert loss[0].item() == pytest.approx(-(0.5 / 0.6) * 2.0)
    assert loss[1].item() == pytest.approx(-min(0.5, 1.2) * 2.0)  # clipped ratio 0.5 on-policy
    model.config.teacher_loss = "imitation"
    loss = model._step_loss(logp, th.zeros(2), adv, th.tensor([True, False]), dist, actions)
    assert loss[0].item() == pytest.approx(-2.0 * np.log(0.5))


def test_hapo_learns_where_grpo_does_not():
    hapo = HAPO(ENV, teacher=RightTeacher(), seed=0, **SMALL).learn(25_000)
    grpo = GRPO(ENV, seed=0, **SMALL).learn(25_000)
    assert hapo.teacher_steps > 0
    assert hapo.evaluate(100)["success_rate"] >= 0.9
    assert grpo.evaluate(100)["success_rate"] <= 0.1


def test_update_equals_grpo_once_no_group_fails():
    hapo = HAPO(ENV, teacher=RightTeacher(), seed=0, **SMALL).learn(25_000)
    grpo = GRPO(ENV, seed=0, **SMALL)
    grpo.policy.load_state_dict(hapo.policy.state_dict())
    grpo.policy.optimizer.load_state_dict(hapo.policy.optimizer.state_dict())
    grpo.rng = copy.deepcopy(hapo.rng)
    th.manual_seed(7)
    h_stats = hapo._iteration()
    th.manual_seed(7)
    g_stats = grpo._iteration()
    assert h_stats.injection_rate == 0.0 and h_stats.teacher_steps == 0
    assert h_stats.train_success_rate == g_stats.train_success_rate == 1.0
    for p_h, p_g in zip(hapo.policy.parameters(), grpo.policy.parameters()):
        assert th.equal(p_h, p_g)


def test_evaluation_neither_moves_the_training_rng_nor_depends_on_it():
    model = GRPO(ENV, seed=0, **SMALL)
    th.manual_seed(3)
    first = model.evaluate(20)
    after_evaluation = th.rand(4)
    th.manual_seed(3)
    assert th.equal(th.rand(4), after_evaluation)
    th.manual_seed(4)
    assert model.evaluate(20) == first


def test_continuous_actions_share_the_code_path():
    model = HAPO(
        "tests.tiny:ContinuousCorridor-v0", teacher=ContinuousRightTeacher(), seed=0, **SMALL
    )
    stats = model._iteration()
    assert stats.injection_rate > 0 and np.isfinite(stats.loss)
    action, _ = model.predict(model.observation_space.sample())
    assert action.shape == (1,)


def test_mixed_adds_a_teacher_episode_to_every_group_without_the_gate():
    model = HAPO(ENV, teacher=RightTeacher(), seed=0, mix_every_group=True, gate="never", **SMALL)
    succeeded = failed_group(6)
    succeeded[0].success, succeeded[0].rewards = True, np.full(14, 0.05, np.float32)
    groups, steps = model._augment_groups([failed_group(5), succeeded])
    assert [len(g) for g in groups] == [5, 5] and steps == 24
    assert all(g[-1].from_teacher and g[-1].success for g in groups)


class CountingTeacher(RightTeacher):
    deterministic = True

    def __init__(self):
        self.calls = 0

    def act(self, env, obs):
        self.calls += 1
        return 1


def test_deterministic_teacher_plans_once_per_start_state_and_is_charged_each_time():
    teacher = CountingTeacher()
    model = HAPO(ENV, teacher=teacher, seed=0, gate="always", teacher_reuse=False, **SMALL)
    _, first = model._augment_groups([failed_group(3)])
    calls = teacher.calls
    groups, second = model._augment_groups([failed_group(3)])
    assert teacher.calls == calls == 12 and first == second == 12
    assert groups[0][0].from_teacher and groups[0][0].success


def test_a_teacher_that_raises_mid_training_is_a_teacher_error():
    class Raising(RightTeacher):
        def act(self, env, obs):
            raise RuntimeError("planner crashed")

    model = HAPO(ENV, teacher=Raising(), seed=0, gate="always", **SMALL)
    with pytest.raises(TeacherError, match="planner crashed"):
        model._augment_groups([failed_group(3)])


def group_with(seed: int, successes: int, n: int = 8) -> list[Episode]:
    """A group of ``n`` episodes whose first ``successes`` reached the end, each later than the
    one before and than the teacher (returns 0.1, 0.09, ...; the teacher's is 0.23); the
    failures' returns are 0."""
    group = failed_group(seed, n)
    for i in range(successes):
        group[i].rewards[-1] = 0.1 - 0.01 * i
        group[i].success = group[i].terminated = True
    return group


def test_the_paper_v1_gate_fires_on_up_to_6_of_8_and_replaces_the_worst_episode():
    model = HAPO(ENV, teacher=RightTeacher(), seed=0, gate="group-mean", tau=0.8, **SMALL)
    fired = []
    for s in range(9):
        group = group_with(s, s)
        before = [e.ret for e in group]
        groups, _ = model._augment_groups([group])
        after = groups[0]
        teacher = [i for i, e in enumerate(after) if e.from_teacher]
        fired.append(bool(teacher))
        if teacher:  # one episode replaced: the first of the lowest returns
            assert teacher == [int(np.argmin(before))]
            kept = [e.ret for i, e in enumerate(after) if i not in teacher]
            assert kept == [r for i, r in enumerate(before) if i != teacher[0]]
            # the statistics are those of the group after replacement
            adv = group_advantages(np.array([[e.ret for e in after]]))[0]
            assert adv[teacher[0]] > 0 and np.isclose(adv.mean(), 0)
            assert not np.allclose(adv, group_advantages(np.array([before]))[0])
    # (1 + S) / 10 < 0.8 iff S <= 6: a policy at p = 0.9 is still taught in 18.7% of groups
    assert fired == [True] * 7 + [False] * 2


def test_the_annealed_v1_gate_stops_firing_as_the_policy_succeeds():
    model = HAPO(ENV, teacher=RightTeacher(), seed=0, gate="group-mean", tau=0.8,
                 adaptive_tau=True, **SMALL)  # fmt: skip
    first, _ = model._augment_groups([group_with(1, 2)])  # global rate 0.25: threshold 0.6
    assert any(e.from_teacher for e in first[0])
    for seed in range(2, 40):  # the global success rate climbs towards 1
        model._augment_groups([group_with(seed, 8)])
    assert model.gate.threshold < 0.1  # below (1 + 0) / 10: no group can fire any more
    late, _ = model._augment_groups([group_with(50, 0)])
    assert not any(e.from_teacher for e in late[0])


def _gaussian(mean, std):
    from stable_baselines3.common.distributions import DiagGaussianDistribution

    mean = th.as_tensor(mean, dtype=th.float32).requires_grad_(True)
    dist = DiagGaussianDistribution(mean.shape[-1])
    return dist.proba_distribution(mean, th.log(th.as_tensor(std, dtype=th.float32))), mean


def test_shaping_on_continuous_actions_is_a_box_probability_whatever_the_scale():
    from scipy.stats import norm

    from hapo_rl.core.shaping import teacher_probability

    box, teacher = 0.05, th.tensor([[0.3, -0.2]])
    dist, _ = _gaussian([[0.25, 0.0]], [0.1, 0.4])
    p = teacher_probability(dist, teacher, dist.log_prob(teacher), th.ones(2), box)
    each = [norm.cdf((a + box - m) / s) - norm.cdf((a - box - m) / s)
            for a, m, s in ((0.3, 0.25, 0.1), (-0.2, 0.0, 0.4))]  # fmt: skip
    assert float(p) == pytest.approx(float(np.sqrt(each[0] * each[1])), rel=1e-5)
    sharp, _ = _gaussian([[0.3, -0.2]], [1e-3, 1e-3])  # all mass on the teacher's action
    assert float(teacher_probability(sharp, teacher, sharp.log_prob(teacher), th.ones(2), box)) == (
        pytest.approx(1.0)
    )
    grads = []
    for k in (1.0, 100.0):  # the same policy on an action space k times larger
        dist, mean = _gaussian([[0.25 * k, 0.0]], [0.1 * k, 0.4 * k])
        p = teacher_probability(dist, teacher * k, dist.log_prob(teacher * k), k * th.ones(2), box)
        (p / (p + 0.1)).sum().backward()
        grads.append((float(p), (mean.grad * k).numpy()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5) and 0 < grads[0][0] < 1
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-4)
    assert np.abs(grads[0][1]).min() > 0  # the teacher's gradient does not vanish


def test_shaping_on_discrete_actions_is_the_actions_probability():
    from stable_baselines3.common.distributions import CategoricalDistribution

    from hapo_rl.core.shaping import teacher_probability

    dist = CategoricalDistribution(3).proba_distribution(th.log(th.tensor([[0.2, 0.5, 0.3]])))
    action = th.tensor([1])
    p = teacher_probability(dist, action, dist.log_prob(action), None, 0.05)
    assert float(p) == pytest.approx(0.5)


def test_hapo_learns_continuous_actions_from_shaping_on_its_teacher_steps():
    env = "tests.tiny:ContinuousCorridor-v0"
    kwargs = dict(teacher=ContinuousRightTeacher(), seed=0, teacher_loss="shaping", **SMALL)
    hapo = HAPO(env, **kwargs).learn(25_000)
    assert hapo.evaluate(100)["success_rate"] >= 0.9
    assert GRPO(env, seed=0, **SMALL).learn(25_000).evaluate(100)["success_rate"] <= 0.1
