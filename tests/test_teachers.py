"""Scripted MiniGrid teachers: success on held-out seeds, detours, determinism, recovery."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid envs)
import pytest
from minigrid.core.world_object import Box, Door, Key

from hapo_rl.teachers import load_teacher
from hapo_rl.teachers.base import FailingTeacher, NoisyTeacher, covered, fails
from hapo_rl.teachers.evaluate import HELD_OUT_SEED, held_out, run_episode
from hapo_rl.teachers.minigrid import MiniGridTeacher

SEEDS = range(HELD_OUT_SEED, HELD_OUT_SEED + 50)

# One small member of each family.
FAST_ENVS = (
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
    "MiniGrid-KeyCorridorS3R2-v0",
    "MiniGrid-Unlock-v0",
    "MiniGrid-UnlockPickup-v0",
    "MiniGrid-BlockedUnlockPickup-v0",
    "MiniGrid-ObstructedMaze-1Dlhb-v0",
    "MiniGrid-ObstructedMaze-2Dlhb-v1",
)


def _successes(env_id: str, seeds, **knobs) -> list[tuple[bool, int, float]]:
    env, teacher = gym.make(env_id), load_teacher(env_id, **knobs)
    return [run_episode(env, teacher, seed) for seed in seeds]


def _key_missing_cuts_off_target(env_id: str, seed: int) -> bool:
    """Whether, at reset, the target is unreachable even with every door whose key exists open and
    every object moved away: then no policy can succeed (keys are never created)."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    u = env.unwrapped
    keys = {o.color for o in u.grid.grid if isinstance(o, Key)}
    keys |= {o.contains.color for o in u.grid.grid if isinstance(o, Box) and o.contains}
    x, y = u.agent_pos
    start, seen, queue = y * u.width + x, set(), deque()
    seen.add(start)
    queue.append(start)
    while queue:
        cell = queue.popleft()
        for nxt in (cell + 1, cell - 1, cell + u.width, cell - u.width):
            obj = u.grid.grid[nxt]
            if obj is u.obj:
                return False
            blocked = obj is not None and (
                obj.type == "wall"
                or (isinstance(obj, Door) and obj.is_locked and obj.color not in keys)
            )
            if nxt not in seen and not blocked:
                seen.add(nxt)
                queue.append(nxt)
    return True


@pytest.mark.parametrize("env_id", FAST_ENVS)
def test_teacher_solves_fast_families(env_id: str) -> None:
    results = _successes(env_id, SEEDS)
    assert sum(ok for ok, _, _ in results) / len(results) >= 0.98


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_obstructed_maze_v0_fails_only_where_unsolvable() -> None:
    """In v0 a blocking ball can overwrite a key; the teacher must solve every other start state."""
    env_id = "MiniGrid-ObstructedMaze-2Dlhb-v0"
    results = _successes(env_id, SEEDS)
    failed = [seed for seed, (ok, _, _) in zip(SEEDS, results) if not ok]
    assert len(failed) / len(SEEDS) <= 0.1
    assert all(_key_missing_cuts_off_target(env_id, seed) for seed in failed)


def test_detour_is_longer_but_still_succeeds() -> None:
    seeds = SEEDS[:30]
    plain = _successes("MiniGrid-DoorKey-8x8-v0", seeds, detour=0.0)
    detour = _successes("MiniGrid-DoorKey-8x8-v0", seeds, detour=1.0)
    assert all(ok for ok, _, _ in plain + detour)
    assert sum(n for _, n, _ in detour) > sum(n for _, n, _ in plain)


def test_a_detour_with_more_stops_goes_back_and_forth_and_still_succeeds() -> None:
    env_id, seeds = "MiniGrid-DoorKey-8x8-v0", SEEDS[:30]
    plain, once, thrice = (
        [run_episode(gym.make(env_id), MiniGridTeacher(detour=d, stops=k), s) for s in seeds]
        for d, k in ((0.0, 1), (1.0, 1), (1.0, 3))
    )
    assert all(ok for ok, _, _ in plain + once + thrice)
    extra = [sum(n for _, n, _ in r) - sum(n for _, n, _ in plain) for r in (once, thrice)]
    assert 0 < 2 * extra[0] <= extra[1]  # out, back and out again: at least twice the detour
    with pytest.raises(ValueError, match="stops"):
        MiniGridTeacher(detour=1.0, stops=0)
    with pytest.raises(ValueError, match="MiniGrid teacher only"):
        load_teacher("tests.tiny:Corridor-v0", "tests.tiny:RightTeacher", detour_stops=2)


@pytest.mark.parametrize("detour", [0.0, 0.5])
def test_teacher_is_deterministic(detour: float) -> None:
    env_id = "MiniGrid-ObstructedMaze-1Dlhb-v0"
    env = gym.make(env_id)

    def actions(seed: int) -> list[int]:
        teacher = MiniGridTeacher(detour=detour)
        obs, _ = env.reset(seed=seed)
        teacher.reset(env, seed)
        taken, done = [], False
        while not done:
            taken.append(teacher.act(env, obs))
            obs, _, terminated, truncated, _ = env.step(taken[-1])
            done = terminated or truncated
        return taken

    for seed in SEEDS[:10]:
        assert actions(seed) == actions(seed)


def test_teacher_recovers_from_random_actions() -> None:
    env_id = "MiniGrid-KeyCorridorS3R3-v0"
    env, teacher = gym.make(env_id), NoisyTeacher(load_teacher(env_id), epsilon=0.3, rng_seed=0)
    assert all(run_episode(env, teacher, seed)[0] for seed in SEEDS[:30])


def test_unsupported_envs_are_rejected() -> None:
    env = gym.make("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="does not support"):
        MiniGridTeacher().reset(env, 0)
    with pytest.raises(ValueError):
        load_teacher("CartPole-v1")
    with pytest.raises(ValueError):
        MiniGridTeacher(detour=1.5)


def test_held_out_counts_uncovered_start_states_as_failures() -> None:
    seeds = range(HELD_OUT_SEED, HELD_OUT_SEED + 20)
    full = held_out("MiniGrid-DoorKey-5x5-v0", seeds)
    half = held_out("MiniGrid-DoorKey-5x5-v0", seeds, coverage=0.5)
    none = held_out("MiniGrid-DoorKey-5x5-v0", seeds, coverage=0.0)
    assert full["success_rate"] == 1.0
    covered_share = sum(covered(s, 0.5) for s in seeds) / 20
    assert 0 < half["success_rate"] == covered_share < 1
    assert none["success_rate"] == none["return_mean"] == 0.0


def test_a_failing_teacher_idles_to_the_step_limit_on_its_share_of_start_states() -> None:
    env_id, seeds = "MiniGrid-DoorKey-5x5-v0", range(HELD_OUT_SEED, HELD_OUT_SEED + 20)
    env, teacher = gym.make(env_id), FailingTeacher(load_teacher(env_id), 0.5)
    ran = {s: run_episode(env, teacher, s) for s in seeds}
    failing = {s for s in seeds if fails(s, 0.5)}
    assert 0 < len(failing) < 20
    limit = env.unwrapped.max_steps
    assert all(ran[s] == (False, limit, 0.0) for s in failing)  # no success, full length
    assert all(ran[s][0] and ran[s][1] < limit for s in set(seeds) - failing)
    half = held_out(env_id, seeds, fail=0.5)
    assert half["success_rate"] == 1 - len(failing) / 20
    pendulum = gym.make("Pendulum-v1")  # a continuous space: the zero action
    pendulum.reset(seed=0)
    idle = FailingTeacher(object(), 1.0)  # the inner teacher is never asked
    idle.reset(pendulum, 0)
    assert idle.act(pendulum, None).tolist() == [0.0]
    with pytest.raises(ValueError, match="teacher_fail"):
        FailingTeacher(idle, 1.5)
