"""The teacher protocol and the quality knobs that wrap any teacher.

A teacher is a scripted expert with privileged access to the environment's true state
(``env.unwrapped``). The trainer calls ``reset(env, seed)`` right after ``env.reset(seed=seed)``
and then ``act(env, obs)`` once per step until the episode ends. The observation the policy sees is
what the wrapped env returns; a teacher may read ``env.unwrapped`` but never writes into the
policy's inputs. A teacher whose actions depend only on the start state may say so with a class
attribute ``deterministic = True``: HAPO then plans once per start state and replays the actions.
"""

from __future__ import annotations

import signal
import threading
import zlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class Teacher(Protocol):
    """A scripted expert that acts from privileged state."""

    def reset(self, env: gym.Env, seed: int) -> None:
        """Prepare for a new episode; ``env`` has just been reset with ``seed``."""

    def act(self, env: gym.Env, obs: Any) -> Any:
        """Return the next action for the current state of ``env``."""


class FunctionTeacher:
    """A plain function as a teacher: ``act(env)``, or ``act(env, obs)`` with ``takes_obs``;
    there is nothing to reset."""

    def __init__(self, act: Callable[..., Any], takes_obs: bool) -> None:
        self.function = act
        self.takes_obs = takes_obs

    def reset(self, env: gym.Env, seed: int) -> None:
        pass

    def act(self, env: gym.Env, obs: Any) -> Any:
        return self.function(env, obs) if self.takes_obs else self.function(env)


#: Seconds a user's teacher may take in one ``reset`` or ``act`` call before its run stops
#: with an error (a planner that never returns would otherwise hang the run silently).
CALL_LIMIT_S = 10.0


class CallTimeout(RuntimeError):
    """A teacher call ran past its time limit."""


class TimeBound:
    """Stop a teacher's ``reset`` or ``act`` call that runs past ``seconds`` with
    ``CallTimeout`` (by SIGALRM, so only in the main thread; elsewhere calls are unbounded)."""

    def __init__(self, teacher: Teacher, seconds: float | None = None) -> None:
        self.teacher = teacher
        self.seconds = CALL_LIMIT_S if seconds is None else seconds
        self.deterministic = getattr(teacher, "deterministic", False)

    def _bounded(self, name: str, *args: Any) -> Any:
        call = getattr(self.teacher, name)
        if threading.current_thread() is not threading.main_thread():
            return call(*args)

        def expire(signum: int, frame: Any) -> None:
            raise CallTimeout(f"its {name} call took more than {self.seconds:g} s")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            return call(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def reset(self, env: gym.Env, seed: int) -> None:
        self._bounded("reset", env, seed)

    def act(self, env: gym.Env, obs: Any) -> Any:
        return self._bounded("act", env, obs)


def unit_hash(seed: int, salt: str) -> float:
    """A deterministic number in [0, 1) for ``seed``, independent across ``salt`` values."""
    return zlib.crc32(f"{salt}:{seed}".encode()) / 2**32


class NoisyTeacher:
    """Replace the teacher's action by a uniformly random one with probability ``epsilon``."""

    def __init__(self, teacher: Teacher, epsilon: float, rng_seed: int = 0) -> None:
        self.teacher = teacher
        self.epsilon = in_unit_interval("epsilon", epsilon)
        self.rng = np.random.default_rng(rng_seed)

    def reset(self, env: gym.Env, seed: int) -> None:
        self.teacher.reset(env, seed)

    def act(self, env: gym.Env, obs: Any) -> Any:
        action = self.teacher.act(env, obs)
        if self.rng.random() < self.epsilon:
            env.action_space.seed(int(self.rng.integers(2**31)))
            return env.action_space.sample()
        return action


class FailingTeacher:
    """The teacher, except on a fixed share of start states (``fails``), where it gives up
    from the first step: it repeats one idle action (the zero vector of a continuous action
    space, the first action of a discrete one: MiniGrid's turn left, spinning on the spot) until the
    episode's step limit, so those episodes fail outright at full length."""

    def __init__(self, teacher: Teacher, share: float) -> None:
        self.teacher = teacher
        self.share = in_unit_interval("teacher_fail", share)
        self.deterministic = getattr(teacher, "deterministic", False)
        self._failing = False

    def reset(self, env: gym.Env, seed: int) -> None:
        self._failing = fails(seed, self.share)
        if not self._failing:
            self.teacher.reset(env, seed)

    def act(self, env: gym.Env, obs: Any) -> Any:
        if not self._failing:
            return self.teacher.act(env, obs)
        space = env.action_space
        if isinstance(space, gym.spaces.Box):
            return np.clip(np.zeros(space.shape, space.dtype), space.low, space.high)
        if isinstance(space, gym.spaces.Discrete):
            return space.start
        raise TypeError(f"teacher_fail needs a Box or Discrete action space, not {space}")


def in_unit_interval(name: str, value: float) -> float:
    """``value``, or a ValueError naming ``name`` if it is outside [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def detours(seed: int, share: float) -> bool:
    """Whether a teacher detouring in ``share`` of episodes detours from start state ``seed``
    (fixed per seed)."""
    return unit_hash(seed, "detour") < share


def fails(seed: int, share: float) -> bool:
    """Whether a teacher failing on ``share`` of start states fails from start state ``seed``
    (fixed per seed)."""
    return unit_hash(seed, "fail") < share


def covered(seed: int, coverage: float) -> bool:
    """Whether a teacher with ``coverage`` exists for start state ``seed`` (fixed per seed)."""
    return unit_hash(seed, "coverage") < coverage


def _innermost(teacher: Teacher) -> Teacher:
    while hasattr(teacher, "teacher"):  # NoisyTeacher, FailingTeacher, TimeBound
        teacher = teacher.teacher
    return teacher


def has_episode(teacher: Teacher, seed: int) -> bool:
    """Whether ``teacher`` can act from start state ``seed``: a teacher with ``covers(seed)``
    (a dataset's) says so, any other can act from every start state."""
    covers = getattr(_innermost(teacher), "covers", None)
    return covers is None or bool(covers(seed))


def is_recorded(teacher: Teacher) -> bool:
    """Whether ``teacher``'s episodes are data (``recorded = True``), each start state's
    charged to the budget once, rather than env steps charged every time."""
    return bool(getattr(_innermost(teacher), "recorded", False))
