"""Find the teacher for a task: the built-in scripted one, or a user's ``module:callable``."""

from __future__ import annotations

import importlib

from hapo_rl.envs.minigrid import is_minigrid
from hapo_rl.envs.mujoco import is_mujoco
from hapo_rl.tasks import TaskError
from hapo_rl.teachers.base import Teacher


def load_teacher(env_id: str, spec: str | None = None, detour: float = 0.0) -> Teacher:
    """``spec`` is ``"module:callable"``; the callable takes no arguments and returns a
    ``Teacher`` (a class works). Without a spec, MiniGrid ids get the scripted planner and the
    sparse MuJoCo tasks their scripted controllers."""
    if spec is None:
        if is_minigrid(env_id):
            from hapo_rl.teachers.minigrid import MiniGridTeacher

            return MiniGridTeacher(detour=detour)
        if is_mujoco(env_id):
            from hapo_rl.teachers.mujoco import teacher_for

            return teacher_for(env_id, detour)
        raise TaskError(f"no built-in teacher for {env_id}; pass --teacher module:callable")
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise TaskError(f"--teacher must look like module:callable, got '{spec}'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise TaskError(f"cannot import teacher '{spec}': {exc}") from None
    teacher = factory()
    if not isinstance(teacher, Teacher):
        raise TaskError(f"teacher '{spec}' has no reset(env, seed) and act(env, obs) methods")
    return teacher
