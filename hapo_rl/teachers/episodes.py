"""Teacher episodes: a teacher run (or replayed) from one start state, as an ``Episode`` the
policy can learn from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    perturb: Callable[[Any], Any] | None = None,
) -> Episode:
    """Run the teacher from start state ``seed``, or replay its earlier ``actions`` from there
    (for a deterministic teacher: the env steps again, the planning is skipped). The stored
    observations are the policy's (what the wrapped env returns); the behaviour log-prob of a
    scripted action is 0. With ``perturb`` the env executes ``perturb(action)`` while the
    episode stores the teacher's own action (noise-injected demonstrations)."""
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
            executed = action if perturb is None else perturb(action)
            next_obs, reward, terminated, truncated, info = env.step(executed)
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


def perturbation(space: gym.Space, noise: float, rng: np.random.Generator) -> Callable[[Any], Any]:
    """DART's noise on executed teacher actions: for a ``Box`` a Gaussian of standard deviation
    ``noise`` half-ranges per dimension, clipped to the bounds; for a ``Discrete`` space a
    uniformly random action with probability ``noise``."""
    if isinstance(space, gym.spaces.Box):
        half = (space.high - space.low) / 2

        def gaussian(action: Any) -> Any:
            noisy = action + noise * half * rng.standard_normal(space.shape)
            return np.clip(noisy, space.low, space.high).astype(space.dtype)

        return gaussian
    if isinstance(space, gym.spaces.Discrete):

        def uniform(action: Any) -> Any:
            if rng.random() < noise:
                return space.start + int(rng.integers(space.n))
            return action

        return uniform
    raise ValueError(f"demonstration noise needs a Box or Discrete action space, got {space}")
