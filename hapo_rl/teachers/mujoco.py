"""Scripted controllers with privileged state for the sparse MuJoCo tasks (``envs/mujoco.py``).

- ``PointMazeTeacher``: breadth-first search over the maze grid from the ball's cell to the
  goal's, then a PD controller towards each cell centre on the path and finally the goal.
- ``FetchReachTeacher``: a proportional controller moving the gripper to the goal.
- ``FetchPushTeacher``: rise, move above the point behind the object (opposite the goal),
  descend, push the object's centre onto the goal, hold. Which of these it does is read off
  the state at every step, so it starts over by itself if the object slips off the push line,
  and a memoryless policy can imitate it (``benchmarks/fetchpush_imitation.py``: a phase kept
  in the teacher, which the policy cannot see, held cloning at 0.42).
- ``ReacherTeacher``: two-link inverse kinematics for the target, then a PD controller on the
  joint angles.

All read ``env.unwrapped`` (true positions and velocities), never the policy's observation.
With ``detour`` in [0, 1], a fraction of episodes (fixed per start state, as for MiniGrid) first
goes somewhere off the route: PointMaze through a free cell of the maze picked by the seed
(reached without passing the goal, where the episode would end),
Fetch 0.15 m from the gripper's start in a seeded horizontal direction and 0.05 m up, Reacher
first to its target's joint angles with the shoulder turned by pi; then it does the task as
usual.
"""

from __future__ import annotations

import collections
from typing import Any

import gymnasium as gym
import numpy as np

from hapo_rl.envs.mujoco import fingertip_to_target
from hapo_rl.teachers.base import detours, in_unit_interval, unit_hash

Cell = tuple[int, int]


def _search(grid: np.ndarray, start: Cell) -> dict[Cell, Cell | None]:
    """Breadth-first search through free cells: each reachable cell's predecessor."""
    previous: dict[Cell, Cell | None] = {start: None}
    queue = collections.deque([start])
    while queue:
        cell = queue.popleft()
        for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            nxt = (cell[0] + dr, cell[1] + dc)
            if grid[nxt] != 1 and nxt not in previous:
                previous[nxt] = cell
                queue.append(nxt)
    return previous


def _path(previous: dict[Cell, Cell | None], goal: Cell) -> list[Cell]:
    """The cells from the search's start to ``goal``, both included."""
    path, step = [], goal
    while step is not None:
        path.append(step)
        step = previous[step]
    return path[::-1]


def _detour_route(grid: np.ndarray, start: Cell, goal: Cell, seed: int) -> list[Cell]:
    """A route from ``start`` to ``goal`` through a free cell picked by ``seed``, one reached
    without passing the goal (where the episode would end) unless the goal stands between the
    start and every other cell."""
    walled = grid.copy()
    walled[goal] = 1
    reach = _search(walled, start)
    if len(reach) == 1:
        reach = _search(grid, start)
    free = sorted(c for c in reach if c not in (start, goal))
    via = free[int(unit_hash(seed, "detour cell") * len(free))]
    return _path(reach, via) + _path(_search(grid, via), goal)[1:]


def _seeded_direction(seed: int) -> np.ndarray:
    """A horizontal unit vector fixed by ``seed``."""
    angle = 2 * np.pi * unit_hash(seed, "detour direction")
    return np.array([np.cos(angle), np.sin(angle), 0.0])


class PointMazeTeacher:
    """Waypoints from a grid search, followed with a PD controller on the ball's force."""

    def __init__(
        self, kp: float = 10.0, kd: float = 1.0, reach: float = 0.35, detour: float = 0.0
    ) -> None:
        self.kp, self.kd, self.reach = kp, kd, reach
        self.detour = in_unit_interval("detour", detour)

    def reset(self, env: gym.Env, seed: int) -> None:
        u = env.unwrapped
        maze = u.maze
        grid = np.asarray(maze.maze_map)
        start = tuple(maze.cell_xy_to_rowcol(u.data.qpos[:2].copy()))
        goal = tuple(maze.cell_xy_to_rowcol(u.goal[:2].copy()))
        if detours(seed, self.detour):
            path = _detour_route(grid, start, goal, seed)
        else:
            path = _path(_search(grid, start), goal)
        centres = [np.asarray(maze.cell_rowcol_to_xy(np.array(c))) for c in path[1:-1]]
        self.waypoints = [*centres, u.goal[:2].copy()]
        self.k = 0

    def act(self, env: gym.Env, obs: Any) -> np.ndarray:
        u = env.unwrapped
        pos, vel = u.data.qpos[:2], u.data.qvel[:2]
        last = len(self.waypoints) - 1
        while self.k < last and np.linalg.norm(self.waypoints[self.k] - pos) < self.reach:
            self.k += 1
        force = self.kp * (self.waypoints[self.k] - pos) - self.kd * vel
        return np.clip(force, -1.0, 1.0).astype(np.float32)


def _fetch_state(env: gym.Env) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gripper position, object position (zeros for FetchReach) and goal."""
    obs = env.unwrapped._get_obs()
    o = obs["observation"]
    obj = o[3:6] if len(o) > 10 else np.zeros(3)
    return o[:3], obj, obs["desired_goal"]


def _move(target: np.ndarray, grip: np.ndarray, gain: float, gripper: float) -> np.ndarray:
    action = np.zeros(4, np.float32)
    action[:3] = np.clip(gain * (target - grip), -1.0, 1.0)
    action[3] = gripper
    return action


class _FetchTeacher:
    """The detour shared by the Fetch teachers: in detouring episodes, first move the gripper
    0.15 m from where it starts in a horizontal direction fixed by the start state, and 0.05 m
    up (clear of the object)."""

    def __init__(self, detour: float = 0.0) -> None:
        self.detour = in_unit_interval("detour", detour)

    def reset(self, env: gym.Env, seed: int) -> None:
        grip, _, _ = _fetch_state(env)
        lift = np.array([0.0, 0.0, 0.05])
        detour = detours(seed, self.detour)
        self.via = grip + 0.15 * _seeded_direction(seed) + lift if detour else None

    def _detour(self, grip: np.ndarray) -> np.ndarray | None:
        """The detour's next action, or None once it is done (or there is none)."""
        if self.via is not None and np.linalg.norm(self.via - grip) < 0.01:
            self.via = None
        return None if self.via is None else _move(self.via, grip, 10.0, -1.0)


class FetchReachTeacher(_FetchTeacher):
    """Move the gripper straight to the goal."""

    def act(self, env: gym.Env, obs: Any) -> np.ndarray:
        grip, _, goal = _fetch_state(env)
        detour = self._detour(grip)
        return _move(goal, grip, 10.0, 0.0) if detour is None else detour


HOLD = np.array([0.0, 0.0, 0.0, -1.0], np.float32)  # no motion, gripper closed


class FetchPushTeacher(_FetchTeacher):
    """Approach from behind the object and push it onto the goal, with the phase read off the
    state at every step (a memoryless policy can imitate it): push when level with the object,
    behind it and in line with the goal; descend when above the point behind it; move over it
    at height; else rise."""

    def __init__(
        self,
        behind: float = 0.07,
        height: float = 0.1,
        contact: float = 0.05,
        detour: float = 0.0,
    ) -> None:
        super().__init__(detour)
        self.behind, self.height, self.contact = behind, height, contact

    def push_line(self, obj: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The unit vector from the object to the goal and the point behind the object on that
        line, or None once the object is on the goal."""
        to_goal = goal[:2] - obj[:2]
        distance = np.linalg.norm(to_goal)
        if distance < 0.015:
            return None
        u = to_goal / distance
        return u, np.array([*(obj[:2] - self.behind * u), obj[2]])

    def act(self, env: gym.Env, obs: Any) -> np.ndarray:
        grip, obj, goal = _fetch_state(env)
        detour = self._detour(grip)
        if detour is not None:
            return detour
        line = self.push_line(obj, goal)
        if line is None:
            return HOLD.copy()
        u, behind = line
        offset = obj[:2] - grip[:2]
        lateral = np.linalg.norm(offset - (offset @ u) * u)
        level = abs(grip[2] - obj[2]) < 0.02
        if level and lateral < 0.015 and 0 < offset @ u < self.behind + 0.02:
            return _move(np.array([*(goal[:2] - self.contact * u), obj[2]]), grip, 5.0, -1.0)
        if np.linalg.norm(grip[:2] - behind[:2]) < 0.015:
            return _move(behind, grip, 10.0, -1.0)
        if grip[2] > obj[2] + self.height - 0.02:
            return _move(behind + [0.0, 0.0, self.height], grip, 10.0, -1.0)
        return _move(np.array([*grip[:2], obj[2] + self.height]), grip, 10.0, -1.0)


class ReacherTeacher:
    """Inverse kinematics of the two-link arm, then PD control of the joint angles."""

    links = (0.1, 0.11)

    def __init__(self, kp: float = 5.0, kd: float = 0.3, detour: float = 0.0) -> None:
        self.kp, self.kd = kp, kd
        self.detour = in_unit_interval("detour", detour)

    def reset(self, env: gym.Env, seed: int) -> None:
        u = env.unwrapped
        q = u.data.qpos[:2]
        target = fingertip_to_target(env) + u.get_body_com("fingertip")[:2]
        target = target - u.get_body_com("body0")[:2]
        l1, l2 = self.links
        r = min(np.linalg.norm(target), l1 + l2 - 1e-6)
        elbow = np.arccos(np.clip((r**2 - l1**2 - l2**2) / (2 * l1 * l2), -1.0, 1.0))
        solutions = []
        for e in (elbow, -elbow):
            shoulder = np.arctan2(target[1], target[0]) - np.arctan2(
                l2 * np.sin(e), l1 + l2 * np.cos(e)
            )
            solutions.append(np.array([shoulder, e]))
        # the solution needing the least shoulder travel (angles wrap)
        travel = [abs(np.angle(np.exp(1j * (s[0] - q[0])))) for s in solutions]
        self.goal = solutions[int(np.argmin(travel))]
        self.via = self.goal + [np.pi, 0.0] if detours(seed, self.detour) else None

    def act(self, env: gym.Env, obs: Any) -> np.ndarray:
        u = env.unwrapped
        q, qd = u.data.qpos[:2], u.data.qvel[:2]
        if self.via is not None and np.abs(np.angle(np.exp(1j * (self.via - q)))).max() < 0.1:
            self.via = None
        error = np.angle(np.exp(1j * ((self.goal if self.via is None else self.via) - q)))
        return np.clip(self.kp * error - self.kd * qd, -1.0, 1.0).astype(np.float32)


TEACHERS: dict[str, type] = {
    "PointMaze": PointMazeTeacher,
    "FetchReach": FetchReachTeacher,
    "FetchPush": FetchPushTeacher,
    "hapo_rl/SparseReacher": ReacherTeacher,
}


def teacher_for(env_id: str, detour: float = 0.0) -> Any:
    """The scripted teacher of a sparse MuJoCo task, detouring in a ``detour`` share of
    episodes."""
    bare = env_id.split(":")[-1]
    for prefix, cls in TEACHERS.items():
        if bare.startswith(prefix):
            return cls(detour=detour)
    raise KeyError(env_id)
