"""A tiny sparse-reward task for tests: walk right along a corridor before time runs out.

Registered as ``tests.tiny:Corridor-v0`` (gymnasium's ``module:Id`` form). Observation: one-hot
position; actions: 0 left, 1 right; success (terminated, reward ``1 - 0.9 t/T``) on reaching the
end; truncation after ``max_steps``. A random policy almost never succeeds.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    def __init__(self, length: int = 12, max_steps: int = 14) -> None:
        self.length = length
        self.max_steps = max_steps
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length + 1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length + 1, np.float32)
        obs[self.pos] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.pos, self.t = 0, 0
        return self._obs(), {}

    def step(self, action: int):
        self.t += 1
        self.pos = max(0, self.pos + (1 if action == 1 else -1))
        success = self.pos == self.length
        reward = 1 - 0.9 * self.t / self.max_steps if success else 0.0
        return self._obs(), reward, success, self.t >= self.max_steps and not success, {}


class RightTeacher:
    """The perfect teacher: always step right."""

    def reset(self, env: gym.Env, seed: int) -> None:
        pass

    def act(self, env: gym.Env, obs: Any) -> int:
        return 1


class LeftTeacher(RightTeacher):
    """A teacher that never succeeds."""

    def act(self, env: gym.Env, obs: Any) -> int:
        return 0


class BadActionTeacher(RightTeacher):
    """A teacher that returns an action outside the action space."""

    def act(self, env: gym.Env, obs: Any) -> int:
        return 7


gym.register("Corridor-v0", entry_point=Corridor)


class ContinuousCorridor(Corridor):
    """The corridor with a continuous action in [-1, 1]: positive moves right, else left."""

    def __init__(self, length: int = 12, max_steps: int = 14) -> None:
        super().__init__(length, max_steps)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def step(self, action: np.ndarray):
        return super().step(1 if float(np.asarray(action).ravel()[0]) > 0 else 0)


class ContinuousRightTeacher(RightTeacher):
    def act(self, env: gym.Env, obs: Any) -> np.ndarray:
        return np.ones(1, np.float32)


gym.register("ContinuousCorridor-v0", entry_point=ContinuousCorridor)


class RaisingTeacher(RightTeacher):
    """A teacher whose planner crashes."""

    def act(self, env: gym.Env, obs: Any) -> int:
        raise RuntimeError("planner crashed")


class TextCorridor(Corridor):
    """The corridor with a text observation, which no policy here can encode."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Text(max_length=4)

    def _obs(self) -> str:
        return str(self.pos)


gym.register("TextCorridor-v0", entry_point=TextCorridor)


class ResetCorridor(Corridor):
    """A corridor of 14 cells where a step left sends the agent back to the start, with 140
    steps to reach the end: a random policy succeeds about once in 200 episodes, and failing
    episodes are ten times the teacher's length."""

    def __init__(self, length: int = 14, max_steps: int = 140) -> None:
        super().__init__(length, max_steps)

    def step(self, action: int):
        if action != 1:
            self.pos = 0
            self.t += 1
            return self._obs(), 0.0, False, self.t >= self.max_steps, {}
        return super().step(action)


gym.register("ResetCorridor-v0", entry_point=ResetCorridor)


# -- user code that goes wrong, for the robustness tests ----------------------------------------


def step_right(env: gym.Env) -> int:
    """A teacher written as the plain function ``act(env)``."""
    return 1


def step_right_seeing(env: gym.Env, obs: Any) -> int:
    """A teacher written as the plain function ``act(env, obs)``."""
    return 1


class TeacherWithArguments(RightTeacher):
    def __init__(self, speed: int) -> None:
        self.speed = speed


class StuckTeacher(RightTeacher):
    """A teacher whose planner never returns."""

    def act(self, env: gym.Env, obs: Any) -> int:
        while True:
            time.sleep(0.01)


class EndlessCorridor(Corridor):
    """The corridor without its end or time limit: an episode never ends by itself."""

    def step(self, action: int):
        self.t += 1
        self.pos = min(self.length - 1, max(0, self.pos + (1 if action == 1 else -1)))
        return self._obs(), 0.0, False, False, {}


class BrokenResetCorridor(Corridor):
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        raise ValueError("the level file is missing")


class TextInDictCorridor(Corridor):
    """The corridor with a Dict observation holding a Text space."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Dict(
            {"pos": self.observation_space, "name": gym.spaces.Text(max_length=4)}
        )

    def _obs(self) -> dict[str, Any]:
        return {"pos": super()._obs(), "name": "c"}


gym.register("EndlessCorridor-v0", entry_point=EndlessCorridor)
gym.register("BrokenResetCorridor-v0", entry_point=BrokenResetCorridor)
gym.register("TextInDictCorridor-v0", entry_point=TextInDictCorridor)
