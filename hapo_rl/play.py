"""Watch a trained agent: a GIF of held-out episodes from a run folder's checkpoint.

    python -m hapo_rl.play RUN_DIR [--episodes N] [--greedy] [--out FILE.gif] [--fps F]

Loads ``RUN_DIR/model.zip`` and plays ``N`` episodes from the held-out start states (reset
seeds 1_000_000 ..), actions sampled from the policy or, with ``--greedy``, its most likely
ones. Each frame is the env's own ``rgb_array`` rendering with the start seed, the step and,
on the episode's last frame, its outcome written on it. MiniGrid renders anywhere; MuJoCo needs
an OpenGL backend (``MUJOCO_GL=egl`` or ``osmesa`` with the system's libEGL or libOSMesa).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from PIL import Image, ImageDraw

from hapo_rl.algos.her import HERBaseline
from hapo_rl.common.cli import OneLineParser, UsageError
from hapo_rl.core.tasks import HELD_OUT_OFFSET, is_success, make_env
from hapo_rl.envs.mujoco import make_goal_env
from hapo_rl.methods import METHODS

#: Frames an episode's last frame is held for, so that its outcome can be read.
HOLD_FRAMES = 6


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m hapo_rl.play",
        description="Write a GIF of a trained agent's held-out episodes.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder")
    parser.add_argument("--episodes", type=int, default=4, help="episodes (default: 4)")
    parser.add_argument(
        "--greedy", action="store_true", help="the most likely action (default: sampled)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="the GIF to write (default: RUN_DIR/play.gif)"
    )
    parser.add_argument("--fps", type=float, default=8.0, help="frames per second (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the action sampling")
    return parser


def load_run(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The model in ``run_dir/model.zip`` and the run's config; ``UsageError`` if either is
    missing or unreadable."""
    try:
        config = json.loads((run_dir / "config.json").read_text())
        cls = METHODS[config["algo"]].cls
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"{run_dir} is not a run folder with a readable config.json") from None
    if not (run_dir / "model.zip").is_file():
        raise UsageError(f"{run_dir} has no checkpoint (model.zip)")
    try:
        return cls.load(run_dir / "model.zip"), config
    except Exception as exc:
        raise UsageError(
            f"{run_dir / 'model.zip'} could not be loaded: {type(exc).__name__}: {exc}"
        ) from None


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((4, 4), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(image)


def play(model: Any, seeds: list[int], greedy: bool) -> tuple[list[np.ndarray], list[bool]]:
    """Frames of one episode from each of ``seeds``, and each episode's success."""
    env_id = model.task.env_id
    if isinstance(model, HERBaseline):
        env = make_goal_env(env_id, render_mode="rgb_array")
    else:
        env = make_env(env_id, render_mode="rgb_array")
    mode = "greedy" if greedy else "sampled"
    frames, outcomes = [], []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=int(seed))
            step, done = 0, False
            while not done:
                frames.append(_label(env.render(), f"seed {seed}  step {step}  {mode}"))
                action, _ = model.predict(obs, deterministic=greedy)
                obs, reward, terminated, truncated, info = env.step(action)
                step += 1
                done = terminated or truncated
            success = is_success(terminated, reward, info)
            outcome = "success" if success else "failure"
            frames += [_label(env.render(), f"seed {seed}  step {step}  {outcome}")] * HOLD_FRAMES
            outcomes.append(success)
    finally:
        env.close()
    return frames, outcomes


def write_gif(frames: list[np.ndarray], path: Path, fps: float) -> None:
    """Write ``frames`` as a looping GIF, through a temporary file renamed into place."""
    images = [Image.fromarray(f) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=int(1000 / fps),
        loop=0,
    )
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        if args.episodes < 1:
            raise UsageError(f"--episodes must be positive, got {args.episodes}")
        if args.fps <= 0:
            raise UsageError(f"--fps must be positive, got {args.fps}")
        out = args.out or args.run_dir / "play.gif"
        if out.suffix.lower() != ".gif":
            raise UsageError(f"--out must end in .gif, got {out}")
        model, config = load_run(args.run_dir)
    except UsageError as exc:
        print(f"hapo_rl.play: error: {exc}", file=sys.stderr)
        return 2
    seeds = [HELD_OUT_OFFSET + i for i in range(args.episodes)]
    th.manual_seed(args.seed)
    try:
        frames, outcomes = play(model, seeds, args.greedy)
    except Exception as exc:  # no renderer: MuJoCo without OpenGL, a user env without one
        print(
            f"hapo_rl.play: error: rendering {config['env_id']} failed ({type(exc).__name__}: "
            f"{exc}); MiniGrid renders anywhere, MuJoCo needs MUJOCO_GL=egl or osmesa with the "
            "system's libEGL or libOSMesa",
            file=sys.stderr,
        )
        return 1
    write_gif(frames, out, args.fps)
    print(
        f"wrote {out}: {len(outcomes)} held-out episodes of {config['algo']} on "
        f"{config['env_id']} ({'greedy' if args.greedy else 'sampled'}), "
        f"{sum(outcomes)} successful"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
