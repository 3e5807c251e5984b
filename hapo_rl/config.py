"""Settings of the group methods. Each field's ``help`` is its ``--help`` text in the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _opt(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class GroupConfig:
    """GRPO's settings."""

    group_size: int = _opt(8, "episodes run from each start state per iteration (G)")
    groups_per_iter: int = _opt(16, "start states drawn from the training pool per iteration (B)")
    n_train_seeds: int = _opt(500, "size of the training pool of start states (reset seeds 0..n-1)")
    learning_rate: float = _opt(3e-4, "Adam learning rate")
    n_epochs: int = _opt(2, "passes over each iteration's steps")
    batch_size: int = _opt(256, "steps per minibatch")
    clip_range: float = _opt(0.2, "PPO clip range of the on-policy ratio")
    ent_coef: float = _opt(0.01, "entropy bonus coefficient")
    max_grad_norm: float = _opt(0.5, "gradient norm clip")
    adv_baseline: str = _opt("mean", "group baseline: mean (GRPO) or loo (RLOO)", ("mean", "loo"))
    adv_scale: str = _opt(
        "std", "divide advantages by the group std, or not (Dr. GRPO)", ("std", "none")
    )
    loss_agg: str = _opt(
        "episode",
        "loss average: each episode weighs the same (episode) or each step does (step)",
        ("episode", "step"),
    )

    def __post_init__(self) -> None:
        for name in ("group_size", "groups_per_iter", "n_train_seeds", "n_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.groups_per_iter > self.n_train_seeds:
            raise ValueError("groups_per_iter cannot exceed n_train_seeds")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        for f in self.__dataclass_fields__.values():
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(
                    f"{f.name} must be one of {', '.join(choices)}, got {getattr(self, f.name)!r}"
                )


@dataclass
class HAPOConfig(GroupConfig):
    """HAPO's settings: GRPO's plus the gate, the injection and the teacher loss."""

    gate: str = _opt(
        "thompson",
        "injection decision for an all-failure group: thompson sample, posterior mean, fixed "
        "probability, always (no gate) or never (GRPO)",
        ("thompson", "mean", "fixed", "always", "never"),
    )
    tau: float = _opt(0.5, "gate threshold: inject iff the success-probability draw is below it")
    adaptive_tau: bool = _opt(False, "anneal the threshold as tau * (1 - global success rate)")
    forgetting: float = _opt(0.9, "posterior forgetting lambda in (0, 1] applied at each update")
    gate_key: str = _opt(
        "start_state",
        "one posterior per start state, or one global posterior",
        ("start_state", "global"),
    )
    gate_prior: str = _opt(
        "uniform", "prior of a new key: Beta(1,1) or empirical Bayes", ("uniform", "empirical")
    )
    fixed_prob: float = _opt(0.5, "injection probability of the fixed gate")
    n_inject: int = _opt(1, "failed episodes replaced by teacher episodes on injection")
    mix_every_group: bool = _opt(
        False,
        "add one teacher episode to every group, failed or not, with no gate (the mixed-policy "
        "baseline, LUFFY-style)",
    )
    teacher_loss: str = _opt(
        "shaping",
        "loss on teacher steps: LUFFY policy shaping pi/(pi+gamma)*A, or imitation A*log pi",
        ("shaping", "imitation"),
    )
    shaping_gamma: float = _opt(0.1, "gamma of the policy-shaping function")
    teacher_epsilon: float = _opt(0.0, "teacher quality: probability of a random teacher action")
    teacher_detour: float = _opt(
        0.0, "teacher quality: share of episodes where the teacher detours"
    )
    teacher_coverage: float = _opt(1.0, "teacher quality: share of start states with a teacher")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.n_inject <= self.group_size:
            raise ValueError(f"n_inject must be in 1..group_size, got {self.n_inject}")
        for name in ("tau", "fixed_prob", "teacher_epsilon", "teacher_detour", "teacher_coverage"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.forgetting <= 1.0:
            raise ValueError(f"forgetting must be in (0, 1], got {self.forgetting}")
