"""Find the teacher for a task: the built-in scripted one, or a user's ``module:callable``."""

from __future__ import annotations

import argparse
import importlib
import inspect
from typing import Any

from hapo_rl.core.tasks import TaskError
from hapo_rl.envs.minigrid import is_minigrid
from hapo_rl.envs.mujoco import is_mujoco
from hapo_rl.teachers.base import FunctionTeacher, Teacher, TimeBound, in_unit_interval
from hapo_rl.teachers.dataset import PREFIX, DatasetTeacher


def load_teacher(
    env_id: str, spec: str | None = None, detour: float = 0.0, detour_stops: int = 1
) -> Teacher:
    """The teacher ``spec`` names, ``"module:name"``, where ``name`` is a ``Teacher`` class or
    a function taking no arguments that returns one, or a plain function ``act(env)`` or
    ``act(env, obs)`` that returns the next action. A user's teacher is bounded in time
    (``TimeBound``). Without a spec, MiniGrid ids get the scripted planner and the sparse
    MuJoCo tasks their scripted controllers; ``"minari:LOCATION"`` replays a Minari dataset
    (``DatasetTeacher``). ``detour_stops`` above 1 is for the MiniGrid planner only. Anything
    wrong raises ``TaskError`` naming the spec."""
    if detour_stops != 1 and not (spec is None and is_minigrid(env_id)):
        raise TaskError(
            f"detour stops are for the built-in MiniGrid teacher only, not {spec or env_id}"
        )
    if spec is None:
        if is_minigrid(env_id):
            from hapo_rl.teachers.minigrid import MiniGridTeacher

            return MiniGridTeacher(detour=detour, stops=detour_stops)
        if is_mujoco(env_id):
            from hapo_rl.teachers.mujoco import teacher_for

            return teacher_for(env_id, detour)
        raise TaskError(f"no built-in teacher for {env_id}; pass --teacher module:callable")
    if spec.startswith(PREFIX):
        return DatasetTeacher(env_id, spec[len(PREFIX) :])
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise TaskError(f"--teacher must look like module:callable, got '{spec}'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error in the user's module: a syntax error, a raise
        raise TaskError(f"teacher '{spec}': importing {module_name} failed: {_say(exc)}") from None
    if not hasattr(module, attr):
        raise TaskError(f"teacher '{spec}': module {module_name} has no {attr}")
    return TimeBound(_as_teacher(spec, getattr(module, attr)))


def _say(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _as_teacher(spec: str, found: Any) -> Teacher:
    if isinstance(found, Teacher) and not inspect.isclass(found):
        return found
    if not callable(found):
        raise TaskError(f"teacher '{spec}' is a {type(found).__name__}, not a class or function")
    try:
        params = inspect.signature(found).parameters.values()
    except (TypeError, ValueError):
        params = []
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not inspect.isclass(found) and len(required) in (1, 2):
        return FunctionTeacher(found, takes_obs=len(required) == 2)
    if required:
        raise TaskError(
            f"teacher '{spec}' needs arguments ({', '.join(required)}): give a Teacher class or "
            "factory that takes none, or a function act(env) or act(env, obs)"
        )
    try:
        teacher = found()
    except Exception as exc:
        raise TaskError(f"teacher '{spec}': calling it raised {_say(exc)}") from None
    if not isinstance(teacher, Teacher):
        raise TaskError(f"teacher '{spec}' has no reset(env, seed) and act(env, obs) methods")
    return teacher


def add_teacher_options(parser: argparse.ArgumentParser, default: str) -> None:
    """``--teacher``, ``--detour``, ``--detour-stops`` and ``--epsilon`` for a command that
    runs a teacher;
    ``default`` says which teacher runs without ``--teacher``."""
    parser.add_argument(
        "--teacher",
        default=None,
        metavar="MODULE:NAME",
        help=f"a user's teacher, as python -m hapo_rl.run --teacher takes it (default: {default})",
    )
    parser.add_argument(
        "--detour", type=float, default=0.0, help="share of episodes the teacher detours in"
    )
    parser.add_argument(
        "--detour-stops",
        type=int,
        default=1,
        help="cells a detour visits, waypoint and start in turn (MiniGrid; default: 1)",
    )
    parser.add_argument(
        "--epsilon", type=float, default=0.0, help="probability of a random action per step"
    )


def check_teacher_options(args: argparse.Namespace) -> None:
    """``ValueError`` unless ``--detour`` and ``--epsilon`` are in [0, 1] and
    ``--detour-stops`` is positive."""
    for name in ("detour", "epsilon"):
        in_unit_interval(f"--{name}", getattr(args, name))
    if args.detour_stops < 1:
        raise ValueError(f"--detour-stops must be at least 1, got {args.detour_stops}")
