"""The run folder: evaluation curves, checkpoints, summary and a progress bar, as one callback."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from hapo_rl.algos.grpo import GRPO, IterationStats
from hapo_rl.common.io import write_csv, write_json

#: Training statistics averaged between evaluation points (the curves' train columns).
TRAIN_COLUMNS = (
    "train_success_rate",
    "injection_rate",
    "teacher_step_share",
    "zero_adv_group_frac",
    "replayed_episodes",
)
#: The evaluation columns of each mode: actions sampled from the policy, or its most likely
#: (greedy) action; a policy that succeeds only by chance shows as a gap between the two.
EVAL_MODES = {"eval": False, "eval_greedy": True}


def _mean(values: list[float]) -> float:
    """Mean of the values that are numbers; NaN (not applicable) if none is."""
    known = [v for v in values if not np.isnan(v)]
    return float(np.mean(known)) if known else float("nan")


class RunRecorder(BaseCallback):
    """Every ``eval_every`` env steps, between updates: evaluate on held-out start states, with
    sampled and with greedy actions, append a row to ``curves.csv``, save ``model.zip``. At the
    end: a last evaluation and ``summary.json``. Works with any model that has ``evaluate``,
    ``save_checkpoint``, ``last_stats`` (``IterationStats`` of its last update),
    ``teacher_steps`` and ``task``."""

    model: GRPO

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        eval_every: int,
        eval_episodes: int,
        algo: str = "",
        progress: bool = True,
        rows: list[dict[str, float]] | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.total_steps = total_steps
        self.eval_every = eval_every
        self.eval_episodes = eval_episodes
        self.algo = algo
        self.progress = progress
        self.rows: list[dict[str, float]] = list(rows or [])
        self._pending: list[IterationStats] = []
        self._last_seen: IterationStats | None = None
        self._next_eval = 0
        self._start = 0.0

    def _record_gate(self, step: int) -> float:
        """For a model with a gate: add its posteriors to ``gate.csv``; return the number of
        start states whose all-failure group would get a teacher episode with probability at
        least 0.5 (NaN without a gate)."""
        gate = getattr(self.model, "gate", None)
        if gate is None:
            return float("nan")
        snapshot = pd.DataFrame(gate.snapshot())
        snapshot.insert(0, "step", step)
        kept = [f for f in (self.gate_rows, snapshot) if len(f)]
        self.gate_rows = pd.concat(kept, ignore_index=True) if kept else snapshot
        write_csv(self.run_dir / "gate.csv", self.gate_rows)
        return float((snapshot["inject_prob"] >= 0.5).sum())

    def _on_training_start(self) -> None:
        gate_csv = self.run_dir / "gate.csv"
        self.gate_rows = pd.DataFrame()
        if self.rows and gate_csv.is_file():  # resumed: keep what the checkpoint had seen
            kept = pd.read_csv(gate_csv)
            self.gate_rows = kept[kept["step"] <= self.model.num_timesteps]
        elapsed = self.rows[-1]["wall_time_s"] if self.rows else 0.0
        self._start = time.perf_counter() - elapsed
        self.pbar = tqdm(
            total=self.total_steps,
            initial=min(self.model.num_timesteps, self.total_steps),
            unit="step",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        if not self.rows:
            self._evaluate()
        self._next_eval = (self.model.num_timesteps // self.eval_every + 1) * self.eval_every

    def _collect(self) -> None:
        """Keep the statistics of an iteration (an update) not kept yet."""
        stats = self.model.last_stats
        if stats is not None and stats is not self._last_seen:
            self._pending.append(stats)
            self._last_seen = stats

    def _on_rollout_start(self) -> None:
        """Between updates (SB3 calls this before each rollout, the group methods before each
        iteration): evaluate and checkpoint once ``eval_every`` env steps have passed."""
        self._collect()
        if self.model.num_timesteps >= self._next_eval:
            self._evaluate()
            while self._next_eval <= self.model.num_timesteps:
                self._next_eval += self.eval_every
        self._note_warm_start()

    def _note_warm_start(self) -> None:
        """bc-grpo's first iteration clones its warm-start episodes, which can take minutes
        before the bar moves: say so on the bar while it does."""
        warming = getattr(self.model, "warm_started", True) is False
        if warming and self.progress:
            c = self.model.config
            self.pbar.set_postfix_str(
                f"warm start: cloning {c.warm_start_demos} teacher episodes, "
                f"{c.warm_start_epochs} passes"
            )
        elif self.progress and self.pbar.postfix:
            self.pbar.set_postfix_str("")

    def _on_step(self) -> bool:
        self.pbar.update(min(self.model.num_timesteps, self.total_steps) - self.pbar.n)
        return True

    def _on_training_end(self) -> None:
        self._collect()
        if self.rows[-1]["step"] != self.model.num_timesteps:
            self._evaluate()
        self.pbar.close()
        last = self.rows[-1]
        wall = time.perf_counter() - self._start
        write_json(
            self.run_dir / "summary.json",
            {
                "algo": self.algo or self.model.__class__.__name__.lower(),
                "env_id": self.model.task.env_id,
                "seed": self.model.seed,
                "total_steps": int(self.model.num_timesteps),
                "eval_success_rate": last["eval_success_rate"],
                "eval_return_mean": last["eval_return_mean"],
                "eval_length_mean": last["eval_length_mean"],
                "eval_greedy_success_rate": last["eval_greedy_success_rate"],
                "eval_greedy_return_mean": last["eval_greedy_return_mean"],
                "eval_greedy_length_mean": last["eval_greedy_length_mean"],
                "injection_rate_final": last["injection_rate"],
                "teacher_steps": int(self.model.teacher_steps),
                "wall_time_s": wall,
                "steps_per_second": self.model.num_timesteps / wall if wall > 0 else 0.0,
            },
        )

    def _evaluate(self) -> None:
        results = {
            prefix: self.model.evaluate(self.eval_episodes, greedy)
            for prefix, greedy in EVAL_MODES.items()
        }
        train = {name: _mean([getattr(s, name) for s in self._pending]) for name in TRAIN_COLUMNS}
        self._pending.clear()
        step = int(self.model.num_timesteps)
        gated = self._record_gate(step)
        row = {
            "step": step,
            "teacher_steps": int(self.model.teacher_steps),
            **train,
            "gated_states": gated,
            **{
                f"{prefix}_{name}": value
                for prefix, result in results.items()
                for name, value in result.items()
            },
            "wall_time_s": time.perf_counter() - self._start,
        }
        self.rows.append(row)
        write_csv(self.run_dir / "curves.csv", pd.DataFrame(self.rows))
        self.model.save_checkpoint(self.run_dir / "model.zip")
        postfix = {
            "eval_success": f"{row['eval_success_rate']:.2f}",
            "greedy": f"{row['eval_greedy_success_rate']:.2f}",
        }
        if not np.isnan(train["injection_rate"]):
            postfix["inject"] = f"{train['injection_rate']:.2f}"
        self.pbar.set_postfix(postfix)
        self.logger.record("eval/success_rate", row["eval_success_rate"])
        self.logger.record("eval/return_mean", row["eval_return_mean"])
        self.logger.record("eval/greedy_success_rate", row["eval_greedy_success_rate"])
