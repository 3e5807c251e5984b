"""Teacher episodes: a teacher run (or replayed) from one start state, as an ``Episode`` the
policy can learn from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from hapo_rl.common.timing import Stopwatch
from hapo_rl.core.rollout import Episode
from hapo_rl.core.tasks import is_success
from hapo_rl.teachers.base import Teacher


def teacher_episode(
    env: gym.Env,
    teacher: Teacher,
    seed: int,
    replay: Sequence[Any] | None = None,
    watch: Stopwatch | None = None,
) -> Episode:
    """Run the teacher from start state ``seed``, or replay its earlier ``actions`` from there
    (for a deterministic teacher: the env steps again, the planning is skipped). The stored
    observations are the policy's (what the wrapped env returns); the behaviour log-prob of a
    scripted action is 0."""
    watch = watch or Stopwatch()
    with watch.section("env"):
        obs, _ = env.reset(seed=int(seed))
    if replay is None:
        with watch.section("teacher"):
            teacher.reset(env, int(seed))
    all_obs, actions, rewards = [], [], []
    while True:
        if replay is None:
            with watch.section("teacher"):
                action = teacher.act(env, obs)
            if not env.action_space.contains(action):
                raise ValueError(f"the teacher returned {action!r}, outside {env.action_space}")
        else:
            action = replay[len(actions)]
        with watch.section("env"):
            next_obs, reward, terminated, truncated, info = env.step(action)
        all_obs.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        obs = next_obs
        if terminated or truncated:
            break
    return Episode(
        seed=int(seed),
        obs=np.stack(all_obs),
        actions=np.stack([np.asarray(a) for a in actions]),
        log_probs=np.zeros(len(actions), np.float32),
        rewards=np.asarray(rewards, np.float32),
        success=is_success(terminated, reward, info),
        terminated=bool(terminated),
        from_teacher=True,
    )
