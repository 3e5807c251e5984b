"""Record a teacher's episodes as a Minari dataset on local disk.

    python -m hapo_rl.teachers.record --env ID --episodes N --out DIR
                                      [--teacher MODULE:NAME] [--detour D] [--epsilon E]

Runs the task's teacher (or a user's, with its quality knobs) from the training start states
(reset seeds ``--first-seed`` .. ``--first-seed + N - 1``) and writes every episode, failed ones
included, with its reset seed, as the Minari dataset in ``DIR`` (which must not exist). Train
from it with ``python -m hapo_rl.run --teacher minari:DIR``. Needs the ``datasets`` extra.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from hapo_rl.common.cli import OneLineParser, UsageError
from hapo_rl.core.tasks import resolve_env_id
from hapo_rl.teachers.base import NoisyTeacher
from hapo_rl.teachers.dataset import record, require_minari
from hapo_rl.teachers.registry import add_teacher_options, check_teacher_options, load_teacher


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m hapo_rl.teachers.record",
        description="Record a teacher's episodes from training start states as a Minari "
        "dataset (for --teacher minari:DIR).",
    )
    parser.add_argument("--env", required=True, help="env id or family alias")
    parser.add_argument("--episodes", type=int, default=100, help="episodes (default: 100)")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="dataset folder to create"
    )
    parser.add_argument(
        "--first-seed", type=int, default=0, help="reset seed of the first episode (default: 0)"
    )
    add_teacher_options(parser, "the task's scripted teacher")
    parser.add_argument(
        "--id",
        default=None,
        metavar="NAMESPACE/ENV/NAME-vN",
        help="the dataset's Minari id (default: hapo_rl/<env name>/teacher-v0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        if args.episodes < 1:
            raise UsageError(f"--episodes must be positive, got {args.episodes}")
        if args.first_seed < 0:
            raise UsageError(f"--first-seed must not be negative, got {args.first_seed}")
        check_teacher_options(args)
        if args.out.exists():
            raise UsageError(f"--out {args.out} already exists; give a new folder")
        require_minari()
        env_id = resolve_env_id(args.env)
        teacher = load_teacher(env_id, args.teacher, args.detour, args.detour_stops)
        if args.epsilon > 0:
            teacher = NoisyTeacher(teacher, args.epsilon)
    except (UsageError, ValueError) as exc:  # TaskError is a ValueError
        print(f"hapo_rl.teachers.record: error: {exc}", file=sys.stderr)
        return 2
    bare = env_id.rpartition(":")[2]
    dataset_id = args.id or f"hapo_rl/{bare.rsplit('-v', 1)[0]}/teacher-v0"
    seeds = range(args.first_seed, args.first_seed + args.episodes)
    bar = tqdm(seeds, desc=f"recording {bare}", unit="episode", disable=args.no_progress)
    try:
        episodes, steps, successes = record(env_id, teacher, bar, args.out, dataset_id)
    except KeyboardInterrupt:
        print("hapo_rl.teachers.record: stopped; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # a user's teacher raising, an action outside the space, a bad --id
        print(
            f"hapo_rl.teachers.record: error: {type(exc).__name__}: {exc}; nothing was written",
            file=sys.stderr,
        )
        return 1
    print(
        f"wrote {episodes} episodes ({steps} steps, {successes} successful) of {env_id} to "
        f"{args.out} (Minari id {dataset_id}); train from it with --teacher minari:{args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
