"""Scripted teachers and the registry that picks one per environment id."""

from __future__ import annotations

from typing import Any

from hapo_rl.teachers.base import Teacher
from hapo_rl.teachers.minigrid import MiniGridTeacher


def teacher_for(env_id: str, **knobs: Any) -> Teacher:
    """The scripted teacher for ``env_id``; ``knobs`` go to its constructor (e.g. ``detour``)."""
    if env_id.startswith("MiniGrid-"):
        return MiniGridTeacher(**knobs)
    raise ValueError(f"no teacher for {env_id!r}")
