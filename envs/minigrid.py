"""MiniGrid task families: ids, aliases and the full-grid observation.

Observation: the policy sees the whole grid (``FullGridObservation``), the same information the
scripted shortest-path teacher plans over, so that whatever the teacher does can be imitated by a
memoryless policy (no imitation gap). The mission string is dropped: in every family listed here
the target object is unique on the grid.

Reward and end: MiniGrid's own sparse reward, ``1 - 0.9 * t / max_steps`` on success and 0
otherwise; an episode terminates on success (or a fatal action) and truncates at ``max_steps``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.world_object import WorldObj

#: Family alias -> (default id, every id of the family this project supports).
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "MiniGrid-KeyCorridor": (
        "MiniGrid-KeyCorridorS3R3-v0",
        tuple(
            f"MiniGrid-KeyCorridor{s}-v0" for s in ("S3R1", "S3R2", "S3R3", "S4R3", "S5R3", "S6R3")
        ),
    ),
    "MiniGrid-DoorKey": (
        "MiniGrid-DoorKey-8x8-v0",
        tuple(f"MiniGrid-DoorKey-{n}x{n}-v0" for n in (5, 6, 8, 16)),
    ),
    "MiniGrid-MultiRoom": (
        "MiniGrid-MultiRoom-N4-S5-v0",
        (
            "MiniGrid-MultiRoom-N2-S4-v0",
            "MiniGrid-MultiRoom-N4-S5-v0",
            "MiniGrid-MultiRoom-N4-S5-v1",
            "MiniGrid-MultiRoom-N6-v0",
        ),
    ),
    "MiniGrid-Unlock": ("MiniGrid-Unlock-v0", ("MiniGrid-Unlock-v0",)),
    "MiniGrid-UnlockPickup": ("MiniGrid-UnlockPickup-v0", ("MiniGrid-UnlockPickup-v0",)),
    "MiniGrid-BlockedUnlockPickup": (
        "MiniGrid-BlockedUnlockPickup-v0",
        ("MiniGrid-BlockedUnlockPickup-v0",),
    ),
    "MiniGrid-ObstructedMaze": (
        "MiniGrid-ObstructedMaze-2Dlh-v0",
        (
            *(
                f"MiniGrid-ObstructedMaze-{v}-v0"
                for v in ("1Dl", "1Dlh", "1Dlhb", "2Dl", "2Dlh", "2Dlhb", "1Q", "2Q", "Full")
            ),
            *(f"MiniGrid-ObstructedMaze-{v}-v1" for v in ("2Dlhb", "1Q", "2Q", "Full")),
        ),
    ),
}

#: Every MiniGrid id this project defines a task for.
TASK_IDS: tuple[str, ...] = tuple(i for _, ids in FAMILIES.values() for i in ids)

_N_OBJECTS = len(OBJECT_TO_IDX)
_N_COLORS = len(COLOR_TO_IDX)
_N_STATES = 4  # door open/closed/locked, or the agent's direction 0..3

#: Number of values each observation channel takes (object, colour, state, carried object,
#: carried colour); the policy's encoder one-hots each channel with these sizes.
CHANNEL_SIZES: tuple[int, ...] = (_N_OBJECTS, _N_COLORS, _N_STATES, _N_OBJECTS, _N_COLORS)


def _grid_space(shape: tuple[int, ...]) -> gym.spaces.Box:
    high = np.broadcast_to(np.array(CHANNEL_SIZES, np.uint8)[:, None, None] - 1, shape)
    return gym.spaces.Box(low=0, high=high, shape=shape, dtype=np.uint8)


def _put_carried(out: np.ndarray, carried: WorldObj | None) -> None:
    """Channels 3 and 4: type and colour of the carried object everywhere, 0 for none."""
    out[3] = OBJECT_TO_IDX[carried.type] if carried is not None else 0
    out[4] = COLOR_TO_IDX[carried.color] if carried is not None else 0


class FullGridObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """The whole grid, egocentric, as a ``(5, S, S)`` uint8 array with ``S = 2 max(W, H) - 1``.

    The grid is shifted so that the agent sits at the centre and rotated so that it faces up
    (cells outside the grid read 0, "unseen"): every cell of the true grid is visible, as in
    ``FullyObsWrapper``, but in the agent's frame, like MiniGrid's own partial view, so that
    turning and moving mean the same thing everywhere. Channels: object type, colour and state of
    every cell (the centre holds the agent and its absolute direction), then the type and colour
    of what the agent carries, broadcast over the grid (0 when it carries nothing). With
    ``egocentric=False`` the grid stays in its own frame, ``(5, W, H)``, as in ``FullyObsWrapper``.
    """

    def __init__(self, env: gym.Env, egocentric: bool = True) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, egocentric=egocentric)
        gym.ObservationWrapper.__init__(self, env)
        base = env.unwrapped
        self.egocentric = egocentric
        self.radius = max(base.width, base.height) - 1
        size = 2 * self.radius + 1
        shape = (len(CHANNEL_SIZES), *((size, size) if egocentric else (base.width, base.height)))
        self.observation_space = _grid_space(shape)

    def observation(self, observation: Any) -> np.ndarray:
        base = self.unwrapped
        grid = base.grid.encode()
        x, y = base.agent_pos
        grid[x, y] = (OBJECT_TO_IDX["agent"], COLOR_TO_IDX["red"], base.agent_dir)
        out = np.zeros(self.observation_space.shape, np.uint8)
        if self.egocentric:
            r = self.radius
            out[:3, r - x : r - x + base.width, r - y : r - y + base.height] = grid.transpose(
                2, 0, 1
            )
            # Direction d (0 right, 1 down, 2 left, 3 up in (x, y)) is turned to face up.
            out[:3] = np.rot90(out[:3], k=3 - base.agent_dir, axes=(1, 2))
        else:
            out[:3] = grid.transpose(2, 0, 1)
        _put_carried(out, base.carrying)
        return out


def is_minigrid(env_id: str) -> bool:
    """Whether ``env_id`` is a MiniGrid or BabyAI id."""
    return env_id.split(":")[-1].startswith(("MiniGrid-", "BabyAI-"))


class AgentViewObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """MiniGrid's own partial view (7x7 cells ahead of the agent, walls block sight) in the same
    5-channel layout, for comparisons with the full grid."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        view = env.observation_space["image"].shape[0]
        shape = (len(CHANNEL_SIZES), view, view)
        self.observation_space = _grid_space(shape)

    def observation(self, observation: Any) -> np.ndarray:
        out = np.zeros(self.observation_space.shape, np.uint8)
        out[:3] = observation["image"].transpose(2, 0, 1)
        _put_carried(out, self.unwrapped.carrying)
        return out


#: Observation choices: the default egocentric full grid, the full grid in its own frame, and
#: MiniGrid's partial 7x7 view.
VIEWS = ("egocentric", "allocentric", "partial")


def make(env_id: str, view: str = "egocentric", source: gym.Env | None = None) -> gym.Env:
    """A MiniGrid env with the observation ``view`` (one of ``VIEWS``), wrapping ``source``
    (the registered env, made here if not given)."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    source = gym.make(env_id) if source is None else source
    if view == "partial":
        return AgentViewObservation(source)
    return FullGridObservation(source, egocentric=view == "egocentric")
