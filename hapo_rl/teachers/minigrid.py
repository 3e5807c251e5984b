"""Scripted planner teachers for MiniGrid families, acting from the true state (``env.unwrapped``).

The planner runs Dijkstra over agent poses (cell, direction) in which turning and moving cost one
step each. On the cheapest route to the task's target, obstacles become subgoals: a locked door
without its key sends the agent to the key (toggling open the box that hides it), and an object in
the way is picked up (a box is toggled open) and later dropped where it costs the task least.
Closed unlocked doors are toggled open on the way. A plan is cached up to its first interaction
(toggle, pickup, drop) and followed only while the true state matches what it predicted, so the
teacher replans from the current state after any perturbation (e.g. an epsilon-random action).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, islice

import gymnasium as gym
from minigrid.core.actions import Actions
from minigrid.core.world_object import Box, Door, Key, WorldObj
from minigrid.minigrid_env import MiniGridEnv

from hapo_rl.teachers.base import detours, in_unit_interval, unit_hash

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = (int(a) for a in Actions)

BLOCKER_COST = 8  # estimated extra steps to move an object out of the route
LOCKED_COST = 30  # estimated extra steps to fetch the key of a locked door on the route
MAX_DEPTH = 8  # nesting limit of subgoals (key behind an object behind ...)
DROP_CANDIDATES = 6  # nearest free cells considered when choosing where to drop an object

# One step of a plan: the action and the (step_count, pose, id(carrying)) it should lead to;
# None after an interaction, whose outcome is read from the env by replanning.
Step = tuple[int, "tuple[int, int, int] | None"]


@dataclass(frozen=True)
class Target:
    """Face ``cell`` (flat index ``y * width + x``) and do ``action`` (FORWARD steps onto it)."""

    cell: int
    action: int


def _find(env: MiniGridEnv, pred: Callable[[WorldObj], bool]) -> int | None:
    """Flat index of the first grid cell whose object satisfies ``pred``."""
    return next((i for i, o in enumerate(env.grid.grid) if o is not None and pred(o)), None)


def _goal_target(env: MiniGridEnv) -> Target | None:
    cell = _find(env, lambda o: o.type == "goal")
    return None if cell is None else Target(cell, FORWARD)


def _door_target(env: MiniGridEnv) -> Target | None:
    cell = _find(env, lambda o: o is env.door)
    return None if cell is None else Target(cell, TOGGLE)


def _object_target(env: MiniGridEnv) -> Target | None:
    cell = _find(env, lambda o: o is env.obj)
    return None if cell is None else Target(cell, PICKUP)


# Task target per env class (looked up along the MRO), from each family's success condition.
_TASKS: dict[str, Callable[[MiniGridEnv], Target | None]] = {
    "DoorKeyEnv": _goal_target,
    "MultiRoomEnv": _goal_target,
    "UnlockEnv": _door_target,
    "KeyCorridorEnv": _object_target,
    "UnlockPickupEnv": _object_target,
    "BlockedUnlockPickupEnv": _object_target,
    "ObstructedMazeEnv": _object_target,
}


def _task_of(env: MiniGridEnv) -> Callable[[MiniGridEnv], Target | None]:
    for cls in type(env).__mro__:
        if cls.__name__ in _TASKS:
            return _TASKS[cls.__name__]
    raise ValueError(
        f"MiniGridTeacher does not support {type(env).__name__}; supported: {sorted(_TASKS)}"
    )


def _opens(carrying: WorldObj | None, door: Door) -> bool:
    return isinstance(carrying, Key) and carrying.color == door.color


def _enter_cost(obj: WorldObj | None, carrying: WorldObj | None, relaxed: bool) -> int | None:
    """Extra steps (beyond the move) to enter a cell holding ``obj``; None if impassable.

    Strict mode allows only cells passable now. Relaxed mode also prices what a plan can clear:
    closed or openable doors (one toggle), locked doors without the key and objects (estimates).
    """
    if obj is None:
        return 0
    if obj.type in ("wall", "lava"):
        return None
    if obj.can_overlap():
        return 0
    if not relaxed:
        return None
    if isinstance(obj, Door):
        return 1 if not obj.is_locked or _opens(carrying, obj) else LOCKED_COST
    return BLOCKER_COST


def _cell_costs(
    env: MiniGridEnv, carrying: WorldObj | None, relaxed: bool, dead: frozenset[int] = frozenset()
) -> list[int | None]:
    """Per-cell enter costs; cells in ``dead`` (locked doors whose key is gone) are impassable."""
    return [
        None if i in dead else _enter_cost(o, carrying, relaxed)
        for i, o in enumerate(env.grid.grid)
    ]


def _pose(env: MiniGridEnv) -> int:
    x, y = env.agent_pos
    return (int(y) * env.width + int(x)) * 4 + int(env.agent_dir)


def _ahead(pose: int, width: int) -> int:
    """The cell in front of ``pose``."""
    cell, d = divmod(pose, 4)
    return cell + (1, width, -1, -width)[d]


def _facing_poses(cell: int, width: int) -> list[int]:
    """The four poses facing ``cell`` (from its left, top, right and bottom neighbours)."""
    sides = ((cell - 1, 0), (cell - width, 1), (cell + 1, 2), (cell + width, 3))
    return [c * 4 + d for c, d in sides]


def _dijkstra(
    costs: list[int | None], width: int, start: int, goals: dict[int, float] | None = None
) -> tuple[dict[int, int], dict[int, tuple[int, int]], int | None]:
    """Cheapest turn/forward costs from ``start`` over poses (``cell * 4 + dir``).

    With ``goals`` (a terminal cost per goal pose), stops once the goal pose minimising cost plus
    terminal cost is known. Returns (cost per pose, parent (pose, action) per pose, that goal pose
    or None).
    """
    dist = {start: 0}
    parent: dict[int, tuple[int, int]] = {}
    heap = [(0, start)]
    best, end = math.inf, None
    while heap:
        d, pose = heapq.heappop(heap)
        if d >= best:
            break
        if d > dist[pose]:
            continue
        if goals and pose in goals and d + goals[pose] < best:
            best, end = d + goals[pose], pose
        ahead = _ahead(pose, width)
        cell, di = divmod(pose, 4)
        moves = [(LEFT, cell * 4 + (di - 1) % 4, 1), (RIGHT, cell * 4 + (di + 1) % 4, 1)]
        if costs[ahead] is not None:
            moves.append((FORWARD, ahead * 4 + di, 1 + costs[ahead]))
        for action, nxt, w in moves:
            if d + w < dist.get(nxt, math.inf):
                dist[nxt] = d + w
                parent[nxt] = (pose, action)
                heapq.heappush(heap, (d + w, nxt))
    return dist, parent, end


def _route(
    costs: list[int | None],
    width: int,
    start: int,
    goal: int,
    onward: dict[int, float] | None = None,
) -> tuple[list[tuple[int, int]], float] | None:
    """Cheapest (action, pose after it) sequence from ``start`` to facing ``goal``, and its cost.

    ``onward`` adds a cost per pose facing ``goal`` (what the rest of the task costs from there).
    """
    goals = onward or dict.fromkeys(_facing_poses(goal, width), 0)
    dist, parent, end = _dijkstra(costs, width, start, goals)
    if end is None:
        return None
    path, pose = [], end
    while pose != start:
        prev, action = parent[pose]
        path.append((action, pose))
        pose = prev
    return path[::-1], dist[end] + goals[end]


def _facing(dist: dict[int, int], width: int, cell: int) -> tuple[float, int]:
    """The cheapest (cost, pose) in ``dist`` facing ``cell``."""
    return min((dist.get(pose, math.inf), pose) for pose in _facing_poses(cell, width))


def _onward(env: MiniGridEnv, target: Target, final: Target) -> dict[int, float] | None:
    """Relaxed cost of reaching ``final`` after doing ``target`` from each pose facing it."""
    if target == final:
        return None
    obj, carrying = env.grid.grid[target.cell], env.carrying
    if target.action == PICKUP:
        carrying = obj
    elif target.action == TOGGLE and isinstance(obj, Box):
        carrying = obj.contains  # the key it hides, picked up next
    elif target.action == DROP:
        carrying = None
    costs = _cell_costs(env, carrying, True)
    costs[target.cell] = BLOCKER_COST if target.action == DROP else 0
    onward = {}
    for pose in _facing_poses(target.cell, env.width):
        if costs[pose // 4] is None:
            continue
        start = target.cell * 4 + pose % 4 if target.action == FORWARD else pose
        found = _route(costs, env.width, start, final.cell)
        if found is not None:
            onward[pose] = found[1]
    return onward or None


def _first_obstacle(env: MiniGridEnv, path: list[tuple[int, int]]) -> int | None:
    """First cell the path enters that needs a subgoal: a locked door without key, or an object."""
    for action, pose in path:
        obj = env.grid.grid[pose // 4]
        if action != FORWARD or obj is None or obj.can_overlap():
            continue
        if not isinstance(obj, Door) or (obj.is_locked and not _opens(env.carrying, obj)):
            return pose // 4
    return None


def _key_source(env: MiniGridEnv, color: str, dead: frozenset[int]) -> Target | None:
    """The cheapest-to-reach key of ``color``: pick it up, or toggle open the box hiding it."""
    sources = []
    for i, obj in enumerate(env.grid.grid):
        if isinstance(obj, Key) and obj.color == color:
            sources.append(Target(i, PICKUP))
        elif isinstance(obj, Box) and isinstance(obj.contains, Key) and obj.contains.color == color:
            sources.append(Target(i, TOGGLE))
    if not sources:
        return None
    dist, _, _ = _dijkstra(_cell_costs(env, env.carrying, True, dead), env.width, _pose(env))
    return min(sources, key=lambda t: (_facing(dist, env.width, t.cell), t.cell))


def _avoiding(
    costs: list[int | None], width: int, start: int, goal: int, avoid: int
) -> tuple[float, int]:
    """Cost and end pose of the cheapest route to face ``goal``; inf if it enters ``avoid``."""
    found = _route(costs, width, start, goal)
    if found is None or any(pose // 4 == avoid for _, pose in found[0]):
        return math.inf, start
    return found[1], found[0][-1][1] if found[0] else start


def _drop_cost(
    env: MiniGridEnv, start: int, cell: int, then: Target | None, final: Target
) -> float:
    """Relaxed cost, after dropping on ``cell`` from pose ``start``, of picking up ``then`` (if any)
    and reaching ``final``; inf if a route the planner would take picks the dropped object up again.
    """
    costs = _cell_costs(env, None, True)
    costs[cell] = BLOCKER_COST
    cost, _ = _avoiding(costs, env.width, start, final.cell, cell)
    if then is None or then == final or cost == math.inf:
        return cost
    cost, start = _avoiding(costs, env.width, start, then.cell, cell)
    costs = _cell_costs(env, env.grid.grid[then.cell], True)
    costs[cell], costs[then.cell] = BLOCKER_COST, 0
    return cost + _avoiding(costs, env.width, start, final.cell, cell)[0]


def _free_cells(env: MiniGridEnv, dist: dict[int, int]) -> Iterator[int]:
    """Empty cells in order of the cheapest pose in ``dist`` facing them."""
    seen = set()
    for pose, _ in sorted(dist.items(), key=lambda kv: (kv[1], kv[0])):
        cell = _ahead(pose, env.width)
        if env.grid.grid[cell] is None and cell not in seen:
            seen.add(cell)
            yield cell


def _drop_target(
    env: MiniGridEnv, then: Target | None, final: Target, near: int | None
) -> Target | None:
    """Where to drop the carried object before picking up ``then``: among the free cells nearest
    the agent or the pose ``near``, the one costing least overall and kept off the coming routes."""
    strict = _cell_costs(env, env.carrying, False)
    dist, _, _ = _dijkstra(strict, env.width, _pose(env))
    near_cells = () if near is None else _free_cells(env, _dijkstra(strict, env.width, near)[0])
    best = (math.inf, -1)
    for i, cell in enumerate(chain(islice(near_cells, DROP_CANDIDATES), _free_cells(env, dist))):
        d, pose = _facing(dist, env.width, cell)
        if d < math.inf:
            best = min(best, (d + 1 + _drop_cost(env, pose, cell, then, final), cell))
        if i + 1 >= 2 * DROP_CANDIDATES and best[0] < math.inf:
            break
    return Target(best[1], DROP) if best[0] < math.inf else None


def _steps(env: MiniGridEnv, path: list[tuple[int, int]], target: Target) -> list[Step]:
    """The plan to cache for an obstacle-free path: moves up to a door toggle or the target act."""
    carrying, step = id(env.carrying), env.step_count
    plan: list[Step] = []
    for action, pose in path:
        obj = env.grid.grid[pose // 4]
        if action == FORWARD and isinstance(obj, Door) and not obj.is_open:
            return [*plan, (TOGGLE, None)]
        step += 1
        plan.append((action, (step, pose, carrying)))
    if not (target.action == PICKUP and env.carrying is not None):
        plan.append((target.action, None))
    return plan


def _plan(env: MiniGridEnv, target: Target, final: Target, depth: int = 0) -> list[Step] | None:
    """Steps toward ``target`` (a subgoal of ``final``), or None if it cannot be reached."""
    if depth > MAX_DEPTH:
        return None
    grid, width = env.grid.grid, env.width
    door = grid[target.cell]
    if isinstance(door, Door) and door.is_locked and not _opens(env.carrying, door):
        source = _key_source(env, door.color, frozenset())
        return None if source is None else _plan(env, source, final, depth + 1)
    dead: frozenset[int] = frozenset()
    onward = _onward(env, target, final)
    while True:
        costs = _cell_costs(env, env.carrying, True, dead | {target.cell})  # face it, never enter
        found = _route(costs, width, _pose(env), target.cell, onward)
        if found is None:
            return None
        path = found[0]
        cell = _first_obstacle(env, path)
        if cell is None:
            break
        obj = grid[cell]
        if not isinstance(obj, Door):
            sub = Target(cell, TOGGLE if isinstance(obj, Box) else PICKUP)
            return _plan(env, sub, final, depth + 1)
        source = _key_source(env, obj.color, dead)
        if source is not None:
            return _plan(env, source, final, depth + 1)
        dead |= {cell}
    doors = (env.grid.grid[pose // 4] for _, pose in path)
    needs_key = any(isinstance(door, Door) and door.is_locked for door in doors)
    if target.action == PICKUP and env.carrying is not None and not needs_key:
        end = path[-1][1] if path else _pose(env)
        drop = _drop_target(env, target, final, end)
        return None if drop is None else _plan(env, drop, final, depth + 1)
    return _steps(env, path, target)


def _waypoint(env: MiniGridEnv, seed: int, final: Target) -> int | None:
    """A free cell of the start area (reached without doors), far from the route, picked by seed."""
    grid, width = env.grid.grid, env.width
    start = _pose(env) // 4
    offsets = (1, width, -1, -width)
    region, queue = {start}, deque([start])
    while queue:
        cell = queue.popleft()
        for nxt in (cell + o for o in offsets):
            if nxt not in region and grid[nxt] is None:
                region.add(nxt)
                queue.append(nxt)
    found = _route(_cell_costs(env, env.carrying, True), width, _pose(env), final.cell)
    route = {start} | {pose // 4 for _, pose in (found[0] if found else [])}
    far = {c: 0 for c in route & region}
    queue = deque(far)
    while queue:
        cell = queue.popleft()
        for nxt in (cell + o for o in offsets):
            if nxt in region and nxt not in far:
                far[nxt] = far[cell] + 1
                queue.append(nxt)
    ranked = sorted(region - {start}, key=lambda c: (-far[c], c))
    top = ranked[: max(1, len(ranked) // 3)]
    return top[int(unit_hash(seed, "waypoint") * len(top))] if top else None


class MiniGridTeacher:
    """Shortest-path planner teacher for the DoorKey, MultiRoom, KeyCorridor, Unlock, UnlockPickup,
    BlockedUnlockPickup and ObstructedMaze families.

    With ``detour`` in [0, 1], a fraction of episodes (fixed per seed) first walks to a waypoint far
    from the shortest route in the start area, then solves the task; ``detour=0`` never detours.
    With ``stops`` above 1 the detour goes back and forth, waypoint and start cell in turn, until
    it has visited ``stops`` cells: 2 is out and back, doubling the detour's length.
    Its actions depend only on the start state (``deterministic``), so HAPO replays them.
    """

    deterministic = True

    def __init__(self, detour: float = 0.0, stops: int = 1) -> None:
        self.detour = in_unit_interval("detour", detour)
        if stops < 1:
            raise ValueError(f"detour stops must be at least 1, got {stops}")
        self.stops = stops
        self._task: Callable[[MiniGridEnv], Target | None] = _goal_target
        self._waypoints: list[int] = []
        self._cached: list[Step] = []
        self._expected: tuple[int, int, int] | None = None

    def reset(self, env: gym.Env, seed: int) -> None:
        """Prepare for the episode ``env`` was just reset to with ``seed``."""
        base = env.unwrapped
        self._task = _task_of(base)
        self._cached, self._expected = [], None
        final = self._task(base)
        far = _waypoint(base, seed, final) if detours(seed, self.detour) and final else None
        start = _pose(base) // 4
        self._waypoints = [] if far is None else [(far, start)[i % 2] for i in range(self.stops)]

    def act(self, env: gym.Env, obs: object) -> int:
        """The next action for the current true state of ``env`` (``obs`` is not used)."""
        base = env.unwrapped
        state = (base.step_count, _pose(base), id(base.carrying))
        if not self._cached or state != self._expected:
            self._cached = self._replan(base)
        action, self._expected = self._cached.pop(0)
        return action

    def _replan(self, env: MiniGridEnv) -> list[Step]:
        final = self._task(env)
        if final is None:
            return [(DONE, None)]
        while self._waypoints:
            if self._waypoints[0] != _pose(env) // 4:
                plan = _plan(env, Target(self._waypoints[0], FORWARD), final)
                if plan is not None:
                    return plan
            self._waypoints.pop(0)  # reached, or out of reach
        carried = env.carrying
        target_obj = getattr(env, "obj", None)
        if isinstance(carried, Box) and carried.contains is not None and carried is not target_obj:
            drop = _drop_target(env, None, final, None)  # unpack it on the floor; it may hide a key
            plan = None if drop is None else _plan(env, drop, final)
        else:
            plan = _plan(env, final, final)
        return plan if plan is not None else [(DONE, None)]
