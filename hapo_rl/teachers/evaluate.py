"""Measure scripted teachers on held-out start states.

    python -m hapo_rl.teachers.evaluate [--episodes N] [--envs ID ...] [--teacher MODULE:NAME]
                                        [--detour D] [--detour-stops K] [--epsilon E]
                                        [--out FILE.csv]

For each env id (or family alias), runs the teacher on reset seeds 1_000_000 .. 1_000_000 + N - 1
in the env as the policy sees it and prints the success rate (the task's own success test, as in
training), mean episode length (steps, over all episodes) and mean return as a Markdown table.
``--envs mujoco`` names the sparse MuJoCo tasks (the ``mujoco`` extra). With ``--out``, also
writes the CSV atomically with a provenance sidecar JSON next to it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import minigrid
import pandas as pd
from tqdm import tqdm

from hapo_rl.common.cli import OneLineParser, UsageError
from hapo_rl.common.io import git_commit, write_csv, write_json
from hapo_rl.core.tasks import is_success, make_env, resolve_env_id
from hapo_rl.teachers.base import FailingTeacher, NoisyTeacher, Teacher, covered
from hapo_rl.teachers.registry import add_teacher_options, check_teacher_options, load_teacher

HELD_OUT_SEED = 1_000_000
COLUMNS = ("env_id", "episodes", "success_rate", "mean_length", "mean_return", "detour", "epsilon",
           "detour_stops")  # fmt: skip

MINIGRID_IDS = (
    *(
        f"MiniGrid-KeyCorridorS{s}R{r}-v0"
        for s, r in ((3, 1), (3, 2), (3, 3), (4, 3), (5, 3), (6, 3))
    ),
    *(f"MiniGrid-DoorKey-{n}x{n}-v0" for n in (5, 6, 8, 16)),
    "MiniGrid-MultiRoom-N2-S4-v0",
    "MiniGrid-MultiRoom-N4-S5-v0",
    "MiniGrid-MultiRoom-N4-S5-v1",
    "MiniGrid-MultiRoom-N6-v0",
    "MiniGrid-Unlock-v0",
    "MiniGrid-UnlockPickup-v0",
    "MiniGrid-BlockedUnlockPickup-v0",
    *(f"MiniGrid-ObstructedMaze-{v}-v0" for v in ("1Dl", "1Dlh", "1Dlhb", "2Dl", "2Dlh", "2Dlhb")),
    *(f"MiniGrid-ObstructedMaze-{v}-v{k}" for v in ("1Q", "2Q", "Full") for k in (0, 1)),
    "MiniGrid-ObstructedMaze-2Dlhb-v1",
)


def run_episode(env: gym.Env, teacher: Teacher, seed: int) -> tuple[bool, int, float]:
    """One teacher episode from ``env.reset(seed=seed)``: (success, steps, return)."""
    obs, _ = env.reset(seed=seed)
    teacher.reset(env, seed)
    steps, ret = 0, 0.0
    while True:
        obs, reward, terminated, truncated, info = env.step(teacher.act(env, obs))
        steps += 1
        ret += float(reward)
        if terminated or truncated:
            return is_success(terminated, reward, info), steps, ret


def held_out(
    env_id: str,
    seeds: Sequence[int],
    detour: float = 0.0,
    epsilon: float = 0.0,
    coverage: float = 1.0,
    spec: str | None = None,
    fail: float = 0.0,
    detour_stops: int = 1,
) -> dict[str, float]:
    """The teacher as a method with these quality settings uses it, from each of ``seeds``:
    success rate and mean return over all seeds (a start state outside its coverage has no
    teacher: a failure with return 0), mean length over the episodes it ran."""
    env, teacher = make_env(env_id), load_teacher(env_id, spec, detour, detour_stops)
    if fail > 0:
        teacher = FailingTeacher(teacher, fail)
    if epsilon > 0:
        teacher = NoisyTeacher(teacher, epsilon, rng_seed=0)
    todo = [int(s) for s in seeds if covered(int(s), coverage)]
    ran = [run_episode(env, teacher, s) for s in tqdm(todo, env_id, leave=False, file=sys.stderr)]
    env.close()
    n = len(seeds)
    return {
        "success_rate": sum(r[0] for r in ran) / n,
        "return_mean": sum(r[2] for r in ran) / n,
        "length_mean": sum(r[1] for r in ran) / len(ran) if ran else float("nan"),
    }


def evaluate(
    env_id: str,
    episodes: int,
    detour: float = 0.0,
    epsilon: float = 0.0,
    spec: str | None = None,
    detour_stops: int = 1,
) -> dict[str, object]:
    """Success rate, mean length and mean return of the teacher for ``env_id`` (the task's
    own, or ``spec``'s) on held-out seeds."""
    seeds = range(HELD_OUT_SEED, HELD_OUT_SEED + episodes)
    result = held_out(env_id, seeds, detour, epsilon, spec=spec, detour_stops=detour_stops)
    return {
        "env_id": env_id,
        "episodes": episodes,
        "success_rate": result["success_rate"],
        "mean_length": result["length_mean"],
        "mean_return": result["return_mean"],
        "detour": detour,
        "epsilon": epsilon,
        "detour_stops": detour_stops,
    }


def provenance(argv: list[str]) -> dict[str, object]:
    """Command, date, git commit (if any) and machine of this measurement."""
    return {
        "command": " ".join(["python -m hapo_rl.teachers.evaluate", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {
            "node": platform.node(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "packages": {"gymnasium": gym.__version__, "minigrid": minigrid.__version__},
        "seeds": f"{HELD_OUT_SEED} .. {HELD_OUT_SEED} + episodes - 1",
    }


def markdown(rows: list[dict[str, object]]) -> str:
    lines = ["| env_id | success | mean length | mean return |", "|---|---:|---:|---:|"]
    lines += [
        f"| {r['env_id']} | {r['success_rate']:.3f} | {r['mean_length']:.1f}"
        f" | {r['mean_return']:.3f} |"
        for r in rows
    ]
    return "\n".join(lines)


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m hapo_rl.teachers.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--episodes", type=int, default=1000, help="held-out start states per task (default: 1000)"
    )
    parser.add_argument(
        "--envs",
        nargs="+",
        default=list(MINIGRID_IDS),
        metavar="ID",
        help="env ids or family aliases; 'mujoco' for the sparse MuJoCo tasks (default: every "
        "MiniGrid task of results/teachers/minigrid.csv)",
    )
    add_teacher_options(parser, "each task's scripted teacher")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE.csv",
        help="also write the table here, with FILE.json beside it (default: print only)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        if args.episodes < 1:
            raise UsageError(f"--episodes must be positive, got {args.episodes}")
        check_teacher_options(args)
        if args.envs == ["mujoco"]:
            from hapo_rl.envs.mujoco import TASK_IDS

            args.envs = list(TASK_IDS)
        env_ids = [resolve_env_id(name) for name in args.envs]
        for env_id in env_ids:
            load_teacher(env_id, args.teacher, args.detour, args.detour_stops)
    except (UsageError, ValueError) as exc:  # TaskError is a ValueError
        print(f"hapo_rl.teachers.evaluate: error: {exc}", file=sys.stderr)
        return 2
    rows = [
        evaluate(env_id, args.episodes, args.detour, args.epsilon, args.teacher, args.detour_stops)
        for env_id in env_ids
    ]
    if args.out is not None:
        write_csv(args.out, pd.DataFrame(rows, columns=COLUMNS))
        write_json(args.out.with_suffix(".json"), provenance(argv))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
