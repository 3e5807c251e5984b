"""Train one method on one task: ``python -m hapo_rl.run --env MiniGrid-KeyCorridor``.

Writes a run folder (default ``results/runs/<env>_<algo>_s<seed>``) with ``config.json``,
``curves.csv``, ``summary.json``, TensorBoard events under ``tb/`` and the checkpoint
``model.zip``. Bad input prints one line on stderr and exits with status 2, leaving no folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import platform
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import torch as th
from stable_baselines3.common.logger import configure

import hapo_rl
from hapo_rl.algos.grpo import GRPO, NumericalError
from hapo_rl.algos.guided import TeacherError
from hapo_rl.cli import OneLineParser, UsageError
from hapo_rl.io import git_commit, write_json
from hapo_rl.methods import METHODS
from hapo_rl.recording import RunRecorder
from hapo_rl.runtime import tune_process
from hapo_rl.tasks import TaskError, resolve_env_id

DEFAULT_TOTAL_STEPS = 500_000


def setting_fields() -> dict[str, dataclasses.Field]:
    """Every method's settings by name (a name shared by methods has one type)."""
    found: dict[str, dataclasses.Field] = {}
    for method in METHODS.values():
        for f in dataclasses.fields(method.config_class):
            found.setdefault(f.name, f)
    return found


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "method settings ([methods] it applies to; the default differs by method where shown)"
    )
    for name, f in setting_fields().items():
        users = [m for m, method in METHODS.items() if name in method.setting_names]
        defaults: dict[Any, list[str]] = {}
        for m in users:
            default = (
                METHODS[m]
                .settings(m, {})
                .get(name, METHODS[m].config_class.__dataclass_fields__[name].default)
            )
            defaults.setdefault(default, []).append(m)
        if len(defaults) == 1:
            default_text = f"default: {next(iter(defaults))}"
        else:
            default_text = "defaults: " + "; ".join(
                f"{value} ({', '.join(ms)})" for value, ms in defaults.items()
            )
        where = "all" if len(users) == len(METHODS) else ", ".join(users)
        help_text = f"[{where}] {f.metadata['help']} ({default_text})"
        flag = "--" + name.replace("_", "-")
        if f.type in ("bool", bool):
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            group.add_argument(
                flag, type=kind, default=None, choices=f.metadata["choices"], help=help_text
            )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m hapo_rl.run",
        description="Train HAPO or a baseline on a Gymnasium task and record a run folder.",
    )
    parser.add_argument(
        "--env",
        default="MiniGrid-KeyCorridor",
        help="env id, family alias (MiniGrid-KeyCorridor means MiniGrid-KeyCorridorS3R3-v0) "
        "or module:Id (default: %(default)s)",
    )
    parser.add_argument(
        "--algo",
        default="hapo",
        choices=list(METHODS),
        help="method (default: %(default)s): "
        + "; ".join(f"{name}: {m.summary}" for name, m in METHODS.items()),
    )
    parser.add_argument(
        "--total-steps",
        type=int,
        default=DEFAULT_TOTAL_STEPS,
        help="training budget in env steps, teacher steps included (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of torch, numpy and start-state draws (default: %(default)s)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="run folder (default: results/runs/<env>_<algo>_s<seed>)",
    )
    parser.add_argument(
        "--teacher",
        default=None,
        help="module:callable returning a teacher (default: the task's scripted teacher)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its last checkpoint, with its saved settings",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=25_000,
        help="env steps between evaluations on held-out start states (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=100,
        help="held-out start states per evaluation; each is run with sampled and with greedy "
        "actions (default: %(default)s)",
    )
    parser.add_argument(
        "--env-workers",
        type=int,
        default=0,
        help="worker processes stepping the envs, 0 to step them in this process; results do "
        "not depend on it (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_options(parser)
    return parser


def _settings(args: argparse.Namespace, algo: str) -> dict[str, Any]:
    given = {name: getattr(args, name) for name in setting_fields()}
    try:
        return METHODS[algo].settings(
            algo, {k: v for k, v in given.items() if v is not None}, _flag
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclasses.dataclass
class Plan:
    """A checked run, ready to start or to resume; nothing written yet."""

    model: Any
    run_dir: Path
    config: dict[str, Any]
    progress: bool
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _command(argv: list[str] | None) -> str:
    args = argv if argv is not None else sys.argv[1:]
    return " ".join([Path(sys.executable).name, "-m", "hapo_rl.run", *args])


def _fresh(args: argparse.Namespace, argv: list[str] | None) -> Plan:
    if args.total_steps < 1:
        raise UsageError(f"--total-steps must be positive, got {args.total_steps}")
    if args.eval_every < 1 or args.eval_episodes < 1:
        raise UsageError("--eval-every and --eval-episodes must be positive")
    if args.env_workers < 0:
        raise UsageError(f"--env-workers must be 0 or more, got {args.env_workers}")
    env_id = resolve_env_id(args.env)
    method = METHODS[args.algo]
    settings = _settings(args, args.algo)
    if method.uses_teacher:
        settings["teacher"] = args.teacher
    elif args.teacher is not None:
        raise UsageError(f"--teacher does not apply to {args.algo}: it uses no teacher")
    try:
        model = method.cls(env_id, seed=args.seed, env_workers=args.env_workers, **settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if method.uses_teacher:
        model.check_teacher()
    run_dir = (
        args.run_dir or Path("results/runs") / f"{env_id.split(':')[-1]}_{args.algo}_s{args.seed}"
    )
    if run_dir.exists() and not args.overwrite:
        raise UsageError(
            f"run folder {run_dir} exists; pass --overwrite to replace it, or --resume"
        )
    config = {
        "algo": args.algo,
        "env": args.env,
        "env_id": model.task.env_id,
        "seed": args.seed,
        "total_steps": args.total_steps,
        "settings": dataclasses.asdict(model.config),
        "teacher": args.teacher,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "env_workers": args.env_workers,
        "train_seeds": f"0..{model.task.n_train - 1}",
        "eval_seeds": "{}..{}".format(*model.task.eval_seeds(args.eval_episodes)[[0, -1]]),
        "package_version": hapo_rl.__version__,
        "git_commit": git_commit(),
        "command": _command(argv),
        "python": platform.python_version(),
        "torch": th.__version__,
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
    }
    return Plan(model, run_dir, config, not args.no_progress)


def _resumed(args: argparse.Namespace, argv: list[str] | None) -> Plan:
    given = {
        a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--")
    }
    extra = given - {"--resume", "--run-dir", "--no-progress", "--env-workers"}
    if extra:
        raise UsageError(
            "--resume takes every setting from the run's config.json; "
            f"drop {', '.join(sorted(extra))}"
        )
    if args.run_dir is None or not (args.run_dir / "config.json").is_file():
        raise UsageError("--resume needs --run-dir naming a run folder with a config.json")
    config = json.loads((args.run_dir / "config.json").read_text())
    if config.get("algo") not in METHODS:
        raise UsageError(f"{args.run_dir / 'config.json'}: unknown algo {config.get('algo')!r}")
    cls = METHODS[config["algo"]].cls
    if not issubclass(cls, GRPO) and args.env_workers:
        raise UsageError(f"--env-workers applies to the group methods, not {config['algo']}")
    model = None
    for name in ("model.zip", "model.prev.zip"):
        path = args.run_dir / name
        if not path.is_file():
            continue
        try:
            extra = {"env_workers": args.env_workers} if issubclass(cls, GRPO) else {}
            model = cls.load(path, **extra)
            break
        except Exception as exc:  # a truncated or corrupted file: say so, use the previous one
            print(
                f"hapo_rl.run: checkpoint {path} is unreadable ({type(exc).__name__}); "
                "trying the previous one",
                file=sys.stderr,
            )
    if model is None:
        raise UsageError(f"no readable checkpoint in {args.run_dir}")
    rows = []
    if (args.run_dir / "curves.csv").is_file():
        curves = pd.read_csv(args.run_dir / "curves.csv")
        rows = curves[curves["step"] <= model.num_timesteps].to_dict("records")
    config["resumed"] = [
        *config.get("resumed", []),
        {"step": int(model.num_timesteps), "command": _command(argv), "git_commit": git_commit()},
    ]
    return Plan(model, args.run_dir, config, not args.no_progress, rows)


def prepare(argv: list[str] | None = None) -> Plan:
    """Parse and check everything, build or load the model; no file is written."""
    args = build_parser().parse_args(argv)
    return _resumed(args, argv) if args.resume else _fresh(args, argv)


def _lock(run_dir: Path) -> TextIO:
    """Hold an exclusive lock on the run folder for this process's life; a second process on
    the same folder (a sweep rerun while the first still runs, say) is refused."""
    handle = (run_dir / ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(f"run folder {run_dir} is in use by another process") from None
    return handle


def main(argv: list[str] | None = None) -> int:
    try:
        plan = prepare(argv)
        if plan.run_dir.exists():
            _held = _lock(plan.run_dir)
    except (UsageError, TaskError, TeacherError) as exc:
        print(f"hapo_rl.run: error: {exc}", file=sys.stderr)
        return 2
    tune_process()
    model, run_dir, config = plan.model, plan.run_dir, plan.config
    if not plan.rows:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        _held = _lock(run_dir)  # noqa: F841 (held until the process ends)
    write_json(run_dir / "config.json", config)
    model.set_logger(configure(str(run_dir / "tb"), ["tensorboard"]))
    recorder = RunRecorder(
        run_dir,
        config["total_steps"],
        config["eval_every"],
        config["eval_episodes"],
        config["algo"],
        plan.progress,
        rows=plan.rows,
    )
    remaining = config["total_steps"] - model.num_timesteps
    try:
        model.learn(remaining, callback=recorder, reset_num_timesteps=not plan.rows)
    except (NumericalError, TeacherError) as exc:
        print(
            f"hapo_rl.run: error: {exc}; the last good checkpoint is {run_dir / 'model.zip'}",
            file=sys.stderr,
        )
        return 1
    summary = json.loads((run_dir / "summary.json").read_text())
    print(
        f"{summary['algo']} on {summary['env_id']} seed {summary['seed']}: "
        f"{summary['total_steps']} env steps ({summary['teacher_steps']} by the teacher) in "
        f"{summary['wall_time_s']:.0f} s, held-out success {summary['eval_success_rate']:.2f}, "
        f"return {summary['eval_return_mean']:.3f}, final injection rate "
        f"{summary['injection_rate_final']:.2f} -> {run_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
