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
import traceback
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym
import pandas as pd
import torch as th
from stable_baselines3.common.logger import configure

import hapo_rl
from hapo_rl.algos.grpo import GRPO, NumericalError
from hapo_rl.algos.guided import TeacherError
from hapo_rl.common.cli import OneLineParser, UsageError
from hapo_rl.common.io import git_commit, write_json
from hapo_rl.common.runtime import tune_process
from hapo_rl.core.config import (
    BCConfig,
    Config,
    GroupConfig,
    HAPOConfig,
    HERConfig,
    JSRLConfig,
    PPOConfig,
    TeacherConfig,
)
from hapo_rl.core.tasks import TaskError, resolve_env_id
from hapo_rl.methods import METHODS
from hapo_rl.recording import RunRecorder

DEFAULT_TOTAL_STEPS = 500_000


def setting_fields() -> dict[str, dataclasses.Field]:
    """Every method's settings by name (a name shared by methods has one type)."""
    found: dict[str, dataclasses.Field] = {}
    for method in METHODS.values():
        for f in dataclasses.fields(method.config_class):
            found.setdefault(f.name, f)
    return found


#: Titles of ``--help``'s option groups, for the settings every method of a config class (and
#: no other) has; settings shared some other way get a group named after their methods.
GROUP_TITLES: list[tuple[type[Config], str]] = [
    (Config, "settings of every method"),
    (GroupConfig, "group methods: start states, groups and the clipped update"),
    (TeacherConfig, "the teacher's quality, for every method that learns from a teacher"),
    (HAPOConfig, "HAPO: the gate, the injection, the teacher loss, sample efficiency"),
    (JSRLConfig, "JSRL: the roll-in curriculum"),
    (BCConfig, "behaviour cloning"),
    (PPOConfig, "PPO (stable-baselines3)"),
    (HERConfig, "HER (stable-baselines3 SAC with hindsight replay)"),
]


def _users(name: str) -> tuple[str, ...]:
    return tuple(m for m, method in METHODS.items() if name in method.setting_names)


SHARED = "settings shared by several kinds of method"


def _group_title(users: tuple[str, ...]) -> str:
    for cls, title in GROUP_TITLES:
        if set(users) == {m for m, spec in METHODS.items() if issubclass(spec.config_class, cls)}:
            return title
    return SHARED


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per setting, grouped by the kind of method it applies to."""
    fields = setting_fields()
    titles = [title for _, title in GROUP_TITLES] + [SHARED]
    used = {_group_title(_users(n)) for n in fields}
    groups = {
        title: parser.add_argument_group(title, _group_text(title))
        for title in titles
        if title in used
    }
    for name, f in fields.items():
        users = _users(name)
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
        title = _group_title(users)
        where = f"[{', '.join(users)}] " if title == SHARED else ""
        help_text = f"{where}{f.metadata['help']} ({default_text})"
        flag = "--" + name.replace("_", "-")
        if f.type in ("bool", bool):
            groups[title].add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            groups[title].add_argument(
                flag, type=kind, default=None, choices=f.metadata["choices"], help=help_text
            )


def _group_text(title: str) -> str:
    if title == SHARED:
        return "each applies to the methods in brackets"
    users = next(_users(n) for n in setting_fields() if _group_title(_users(n)) == title)
    return f"applies to: {', '.join(users)}"


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
        metavar="SPEC",
        help="module:callable returning a teacher, or minari:DIR to replay a Minari dataset's "
        "episodes (python -m hapo_rl.teachers.record writes one) (default: the task's "
        "scripted teacher)",
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
        # the success verdicts use: the mean action for continuous control, as is the custom
        "headline_eval": "greedy" if isinstance(model.action_space, gym.spaces.Box) else "sampled",
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
    if run_dir.exists() and not args.overwrite:
        raise UsageError(_occupied(run_dir, config))
    return Plan(model, run_dir, config, not args.no_progress)


#: What makes two runs the same run (the rest of ``config.json`` is provenance).
IDENTITY = ("algo", "env_id", "seed", "total_steps", "eval_every", "eval_episodes", "teacher")


def _occupied(run_dir: Path, config: dict[str, Any]) -> str:
    """Why a fresh run cannot use ``run_dir``, and what to do instead."""
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        diff = [
            f"{k} {saved.get(k)!r}, not {config[k]!r}"
            for k in IDENTITY
            if saved.get(k) != config[k]
        ] + [
            f"{k} {saved['settings'].get(k)!r}, not {v!r}"
            for k, v in config["settings"].items()
            if saved["settings"].get(k) != v
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"run folder {run_dir} exists; pass --overwrite to replace it"
    if diff:
        return (
            f"run folder {run_dir} holds a different run ({'; '.join(diff[:3])}); pass "
            "--overwrite to replace it, or another --run-dir"
        )
    if (run_dir / "summary.json").is_file():
        return f"run folder {run_dir} already holds this run, finished; --overwrite runs it again"
    return (
        f"run folder {run_dir} holds this run, unfinished; continue it with "
        f"python -m hapo_rl.run --resume --run-dir {run_dir}"
    )


#: Options ``--resume`` takes from the command line rather than from ``config.json``.
RESUME_OPTIONS = ("resume", "run_dir", "no_progress", "env_workers")
#: Config keys whose type ``--resume`` checks before it writes anything.
CONFIG_TYPES: dict[str, type] = {
    "algo": str,
    "env_id": str,
    "seed": int,
    "total_steps": int,
    "eval_every": int,
    "eval_episodes": int,
    "settings": dict,
}


def _damaged(path: Path, why: str) -> UsageError:
    return UsageError(f"{path} is damaged ({why}); restore it, or start again with --overwrite")


def _saved_config(run_dir: Path) -> dict[str, Any]:
    """The run's ``config.json``, checked: ``UsageError`` if it is not what a run wrote."""
    path = run_dir / "config.json"
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(path, f"not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise _damaged(path, "not a JSON object")
    for key, kind in CONFIG_TYPES.items():
        value = config.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _damaged(path, f"{key} should be {kind.__name__}, is {value!r}")
    for key in ("total_steps", "eval_every", "eval_episodes"):
        if config[key] < 1:
            raise _damaged(path, f"{key} should be positive, is {config[key]}")
    if config["algo"] not in METHODS:
        raise _damaged(path, f"unknown algo {config['algo']!r}")
    return config


def _saved_curves(run_dir: Path, step: int) -> list[dict[str, Any]]:
    """The rows of ``curves.csv`` up to ``step`` (the checkpoint's), checked."""
    path = run_dir / "curves.csv"
    if not path.is_file():
        return []
    try:
        curves = pd.read_csv(path)
    except (UnicodeDecodeError, ValueError) as exc:  # pandas' parser errors are ValueErrors
        raise _damaged(path, f"{type(exc).__name__}: {str(exc).strip()}") from None
    if "step" not in curves or not pd.api.types.is_integer_dtype(curves["step"]):
        raise _damaged(path, "no integer step column")
    return curves[curves["step"] <= step].to_dict("records")


def _given(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options written in ``argv``."""
    flags = parser._option_string_actions  # noqa: SLF001 (argparse has no public map)
    return {flags[a.split("=")[0]].dest for a in argv if a.split("=")[0] in flags}


def _contradictions(args: argparse.Namespace, given: set[str], config: dict) -> list[str]:
    """The options given with ``--resume`` whose values differ from the saved run's."""
    saved = {**config["settings"], **{k: config.get(k) for k in IDENTITY}}
    out = []
    for dest in sorted(given - set(RESUME_OPTIONS)):
        value = getattr(args, dest)
        if dest == "overwrite":
            out.append("--overwrite (resume keeps the run)")
        elif dest == "env":
            if resolve_env_id(value) != config["env_id"]:
                out.append(f"--env {value} (saved {config['env_id']})")
        elif value != saved.get(dest):
            out.append(f"{_flag(dest)} {value} (saved {saved.get(dest)})")
    return out


def _resumed(
    args: argparse.Namespace, argv: list[str] | None, parser: argparse.ArgumentParser
) -> Plan:
    argv = argv if argv is not None else sys.argv[1:]
    if args.run_dir is None or not (args.run_dir / "config.json").is_file():
        raise UsageError("--resume needs --run-dir naming a run folder with a config.json")
    config = _saved_config(args.run_dir)
    differ = _contradictions(args, _given(parser, argv), config)
    if differ:
        raise UsageError(
            "--resume continues the run as its config.json says; these differ from it: "
            + ", ".join(differ)
        )
    cls = METHODS[config["algo"]].cls
    if not issubclass(cls, GRPO) and args.env_workers:
        raise UsageError(f"--env-workers applies to the group methods, not {config['algo']}")
    model = None
    names = [n for n in ("model.zip", "model.prev.zip") if (args.run_dir / n).is_file()]
    for i, name in enumerate(names):
        path = args.run_dir / name
        try:
            extra = {"env_workers": args.env_workers} if issubclass(cls, GRPO) else {}
            model = cls.load(path, **extra)
            break
        except Exception as exc:  # a truncated or corrupted file: say so, use the previous one
            then = "; trying the previous one" if i + 1 < len(names) else ""
            print(
                f"hapo_rl.run: checkpoint {path} is unreadable ({type(exc).__name__}){then}",
                file=sys.stderr,
            )
    if model is None:
        raise UsageError(f"no readable checkpoint in {args.run_dir}")
    rows = _saved_curves(args.run_dir, model.num_timesteps)
    config["resumed"] = [
        *config.get("resumed", []),
        {"step": int(model.num_timesteps), "command": _command(argv), "git_commit": git_commit()},
    ]
    return Plan(model, args.run_dir, config, not args.no_progress, rows)


def prepare(argv: list[str] | None = None) -> Plan:
    """Parse and check everything, build or load the model; no file is written."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return _resumed(args, argv, parser) if args.resume else _fresh(args, argv)


def _lock(run_dir: Path) -> TextIO:
    """Hold an exclusive lock on the run folder for this process's life; a second process on
    the same folder (a sweep rerun while the first still runs, say) is refused."""
    handle = (run_dir / ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(f"run folder {run_dir} is in use by another process") from None
    return handle


def _interrupted(run_dir: Path, step: int, fresh: bool) -> int:
    """Ctrl-C: say what is kept and how to go on; exit status 130, as a shell reports it."""
    # a Ctrl-C while a checkpoint is saved may leave only the previous one, which --resume takes
    kept = any((run_dir / n).is_file() for n in ("model.zip", "model.prev.zip"))
    if kept:
        print(
            f"hapo_rl.run: interrupted at env step {step}; continue from the last checkpoint with "
            f"python -m hapo_rl.run --resume --run-dir {run_dir}",
            file=sys.stderr,
        )
    else:
        if fresh and run_dir.exists():
            shutil.rmtree(run_dir)
        print("hapo_rl.run: interrupted before the first checkpoint; nothing kept", file=sys.stderr)
    return 130


def _failed(run_dir: Path, step: int, exc: Exception) -> int:
    """An error from inside training (a user env or teacher, say): one line, the traceback in
    ``error.txt`` of the run folder, exit status 1; the checkpoints stay."""
    log = run_dir / "error.txt"
    log.write_text("".join(traceback.format_exception(exc)))
    print(
        f"hapo_rl.run: error: {type(exc).__name__}: {exc} (at env step {step}; traceback in "
        f"{log}); the last good checkpoint is {run_dir / 'model.zip'}",
        file=sys.stderr,
    )
    return 1


def _report(summary: dict[str, Any], run_dir: Path, headline: str) -> str:
    injection = summary["injection_rate_final"]
    success = {
        "sampled": summary["eval_success_rate"],
        "greedy": summary["eval_greedy_success_rate"],
    }
    order = sorted(success, key=lambda mode: mode != headline)
    prefix = {"sampled": "eval", "greedy": "eval_greedy"}[headline]
    return (
        f"{summary['algo']} on {summary['env_id']} seed {summary['seed']}: "
        f"{summary['total_steps']} env steps ({summary['teacher_steps']} by the teacher) in "
        f"{summary['wall_time_s']:.0f} s, held-out success "
        + ", ".join(f"{success[m]:.2f} {m}" for m in order)
        + f", return {summary[prefix + '_return_mean']:.3f} ({headline}), final injection rate "
        f"{'n/a' if injection is None else f'{injection:.2f}'} -> {run_dir}"
    )


def main(argv: list[str] | None = None) -> int:
    try:
        plan = prepare(argv)
        if plan.run_dir.exists():
            _held = _lock(plan.run_dir)
    except (UsageError, TaskError, TeacherError) as exc:
        print(f"hapo_rl.run: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hapo_rl.run: interrupted; nothing written", file=sys.stderr)
        return 130
    tune_process()
    model, run_dir, config = plan.model, plan.run_dir, plan.config
    fresh = not plan.rows
    try:
        if fresh:
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
        model.learn(remaining, callback=recorder, reset_num_timesteps=fresh)
    except KeyboardInterrupt:
        return _interrupted(run_dir, model.num_timesteps, fresh)
    except (NumericalError, TeacherError) as exc:
        print(
            f"hapo_rl.run: error: {exc}; the last good checkpoint is {run_dir / 'model.zip'}",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # user code (an env, a teacher) failing mid-run
        return _failed(run_dir, model.num_timesteps, exc)
    if isinstance(model, GRPO) and model.uses_groups and model.learnt_groups == 0:
        warm = getattr(model.config, "warm_start_demos", 0)
        print(
            f"hapo_rl.run: warning: no group of episodes finished within the budget, so the "
            f"policy {'had no update after its warm start' if warm else 'was never updated'}: "
            f"--total-steps {config['total_steps']} is less than one "
            f"iteration of {model.config.groups_per_iter} x {model.config.group_size} episodes "
            "here; give a larger budget",
            file=sys.stderr,
        )
    if isinstance(model, GRPO) and model.exhausted():
        print(
            f"hapo_rl.run: the teacher's dataset was used up after {model.num_timesteps} of "
            f"--total-steps {config['total_steps']} env steps, so training ended there",
            file=sys.stderr,
        )
    summary = json.loads((run_dir / "summary.json").read_text())
    print(_report(summary, run_dir, config.get("headline_eval", "sampled")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
