"""Settings of every method, one dataclass each. Each field's ``help`` is its ``--help`` text in
the CLI and its ``check`` (``positive``, ``unit`` for [0, 1], ``fraction`` for (0, 1]) is
enforced on construction, as are its ``choices``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _opt(
    default: Any, help: str, choices: tuple[str, ...] | None = None, check: str | None = None
) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "check": check})


_CHECKS = {
    "positive": (lambda v: v > 0, "must be positive"),
    "unit": (lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    "fraction": (lambda v: 0.0 < v <= 1.0, "must be in (0, 1]"),
}


@dataclass
class Config:
    """Checks every field against its ``choices`` and ``check`` metadata, then ``_check``."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ValueError(f"{f.name} must be one of {', '.join(choices)}, got {value!r}")
            check = f.metadata.get("check")
            if check and not _CHECKS[check][0](value):
                raise ValueError(f"{f.name} {_CHECKS[check][1]}, got {value}")
        self._check()

    def _check(self) -> None:
        """Checks across fields."""


@dataclass
class GroupConfig(Config):
    """GRPO's settings."""

    group_size: int = _opt(
        8, "episodes run from each start state per iteration (G)", None, "positive"
    )
    groups_per_iter: int = _opt(
        16, "start states drawn from the training pool per iteration (B)", None, "positive"
    )
    n_train_seeds: int = _opt(
        500, "size of the training pool of start states (reset seeds 0..n-1)", None, "positive"
    )
    learning_rate: float = _opt(3e-4, "Adam learning rate", None, "positive")
    n_epochs: int = _opt(2, "passes over each iteration's steps", None, "positive")
    batch_size: int = _opt(256, "steps per minibatch", None, "positive")
    clip_range: float = _opt(0.2, "PPO clip range of the on-policy ratio", None, "positive")
    ent_coef: float = _opt(0.01, "entropy bonus coefficient")
    max_grad_norm: float = _opt(0.5, "gradient norm clip", None, "positive")
    adv_baseline: str = _opt("mean", "group baseline: mean (GRPO) or loo (RLOO)", ("mean", "loo"))
    adv_scale: str = _opt(
        "std", "divide advantages by the group std, or not (Dr. GRPO)", ("std", "none")
    )
    loss_agg: str = _opt(
        "episode",
        "loss average: each episode weighs the same (episode) or each step does (step)",
        ("episode", "step"),
    )
    fail_step_frac: float = _opt(
        1.0,
        "share of a failed on-policy episode's steps kept in the update, each weighted by its "
        "inverse (the same expected loss, a cheaper update)",
        None,
        "fraction",
    )

    def _check(self) -> None:
        super()._check()
        if self.groups_per_iter > self.n_train_seeds:
            raise ValueError("groups_per_iter cannot exceed n_train_seeds")


@dataclass
class TeacherConfig(Config):
    """The teacher's quality knobs, shared by every method that uses a teacher."""

    teacher_epsilon: float = _opt(
        0.0, "teacher quality: probability of a random teacher action", None, "unit"
    )
    teacher_detour: float = _opt(
        0.0, "teacher quality: share of episodes where the teacher detours", None, "unit"
    )
    teacher_detour_stops: int = _opt(
        1,
        "teacher quality: cells a detour visits, waypoint and start in turn (MiniGrid teacher)",
        None,
        "positive",
    )
    teacher_coverage: float = _opt(
        1.0, "teacher quality: share of start states with a teacher", None, "unit"
    )
    teacher_fail: float = _opt(
        0.0,
        "teacher quality: share of start states where the teacher idles until the step limit",
        None,
        "unit",
    )


@dataclass
class HAPOConfig(GroupConfig, TeacherConfig):
    """HAPO's settings: GRPO's plus the gate, the injection, the teacher loss, the
    sample-efficiency mechanisms and an optional behaviour-cloning warm start. The defaults
    are the ones chosen on the tuning tasks (``experiments/tuning.toml``); ``hapo-paper``
    keeps the paper's (``hapo_rl.methods.PAPER``)."""

    group_size: int = _opt(
        4, "episodes run from each start state per iteration (G)", None, "positive"
    )
    groups_per_iter: int = _opt(
        4, "start states drawn from the training pool per iteration (B)", None, "positive"
    )

    gate: str = _opt(
        "thompson",
        "injection decision for an all-failure group: thompson sample, posterior mean, fixed "
        "probability, always (no gate) or never (GRPO); group-mean: the paper's v1 rule as a "
        "reviewer reads it, any group whose (1 + successes) / (group_size + 2) is below tau "
        "(with tau 0.8 and groups of 8: up to 6 successes)",
        ("thompson", "mean", "fixed", "always", "never", "group-mean"),
    )
    tau: float = _opt(
        0.5, "gate threshold: inject iff the success-probability draw is below it", None, "unit"
    )
    adaptive_tau: bool = _opt(
        False,
        "anneal the threshold as tau * (1 - global success rate); with the group-mean gate, "
        "this project's stand-in for the paper's v2 annealing",
    )
    forgetting: float = _opt(
        0.9, "posterior forgetting lambda in (0, 1] applied at each update", None, "fraction"
    )
    forget_by: str = _opt(
        "iteration",
        "when forgetting applies: at each update of a start state's posterior (visit), or to "
        "every posterior once per iteration, towards the prior (iteration: discounted Thompson "
        "sampling, so a state not drawn lately reverts to the prior)",
        ("visit", "iteration"),
    )
    gate_key: str = _opt(
        "start_state",
        "one posterior per start state, or one global posterior",
        ("start_state", "global"),
    )
    gate_prior: str = _opt(
        "empirical",
        "prior of a new key: Beta(1,1), or empirical Bayes (mean the global success rate, "
        "strength 2)",
        ("uniform", "empirical"),
    )
    fixed_prob: float = _opt(0.5, "injection probability of the fixed gate", None, "unit")
    n_inject: int = _opt(
        1, "episodes replaced by teacher episodes on injection (the lowest returns first)"
    )
    mix_every_group: bool = _opt(
        False,
        "add one teacher episode to every group, failed or not, with no gate (the mixed-policy "
        "baseline, LUFFY-style)",
    )
    teacher_loss: str = _opt(
        "imitation",
        "loss on teacher steps: LUFFY policy shaping pi/(pi+gamma)*A, or imitation A*log pi",
        ("shaping", "imitation"),
    )
    shaping_gamma: float = _opt(0.1, "gamma of the policy-shaping function", None, "positive")
    shaping_box: float = _opt(
        0.05,
        "continuous actions: policy shaping's p is the probability of a box this many "
        "half-ranges of each action dimension around the teacher's action (geometric mean "
        "over dimensions), not the density",
        None,
        "positive",
    )
    horizon_cut: float = _opt(
        2.0,
        "while a start state's gate is open (an all-failure group would get a teacher episode "
        "with probability at least 0.5), its on-policy episodes stop after this many times the "
        "teacher's episode length from it, the teacher running first where it has not yet; 0: "
        "every episode runs to the task's limit",
    )
    teacher_reuse: bool = _opt(
        True,
        "keep each start state's first successful teacher episode and inject it again at no env "
        "cost, instead of running the teacher (charged) at every injection",
    )
    teacher_replay: int = _opt(
        128,
        "kept teacher episodes offered for replay per iteration at no env cost: that many start "
        "states with a kept episode, not drawn this iteration, are picked at random and each "
        "is replayed iff its gate fires now (so replay fades as the gates shut), with the "
        "advantage its episode last had in a group",
    )
    warm_start_demos: int = _opt(
        0, "behaviour-cloning warm start: teacher episodes cloned before RL (bc-grpo)"
    )
    warm_start_epochs: int = _opt(20, "passes over the warm-start episodes", None, "positive")
    warm_start_noise: float = _opt(
        0.0,
        "noise-injected warm-start episodes (DART, as bc's demo_noise): the env executes "
        "perturbed teacher actions, each episode keeps the teacher's own, and every one is "
        "cloned, failed or not",
        None,
        "unit",
    )

    def _check(self) -> None:
        super()._check()
        if not 1 <= self.n_inject <= self.group_size:
            raise ValueError(f"n_inject must be in 1..group_size, got {self.n_inject}")
        if self.horizon_cut < 0 or 0 < self.horizon_cut < 1:
            raise ValueError(f"horizon_cut must be 0 (off) or at least 1, got {self.horizon_cut}")
        if self.teacher_replay < 0:
            raise ValueError(f"teacher_replay must be 0 or more, got {self.teacher_replay}")
        if self.warm_start_demos < 0:
            raise ValueError(f"warm_start_demos must be 0 or more, got {self.warm_start_demos}")


@dataclass
class JSRLConfig(GroupConfig, TeacherConfig):
    """Jump-start RL's settings: GRPO's plus the roll-in curriculum."""

    jsrl_stages: int = _opt(
        10,
        "curriculum stages: the teacher's roll-in covers (stages-k)/stages of its episode at "
        "stage k",
        None,
        "positive",
    )
    jsrl_threshold: float = _opt(
        0.8, "training success rate that moves the curriculum to the next stage", None, "unit"
    )


@dataclass
class BCConfig(TeacherConfig):
    """Behaviour cloning's settings."""

    demos_per_iter: int = _opt(
        16,
        "start states from the training pool the teacher runs on per iteration",
        None,
        "positive",
    )
    n_train_seeds: int = _opt(
        500, "size of the training pool of start states (reset seeds 0..n-1)", None, "positive"
    )
    learning_rate: float = _opt(3e-4, "Adam learning rate", None, "positive")
    n_epochs: int = _opt(
        2,
        "minibatch steps per iteration, in passes over the iteration's new steps",
        None,
        "positive",
    )
    batch_size: int = _opt(256, "steps per minibatch", None, "positive")
    max_grad_norm: float = _opt(0.5, "gradient norm clip", None, "positive")
    demo_noise: float = _opt(
        0.0,
        "noise-injected demonstrations (DART): the env executes the teacher's action plus "
        "Gaussian noise of this many half-ranges (continuous actions) or a random action with "
        "this probability (discrete), the dataset keeps the teacher's own action, and every "
        "such episode joins it, failed or not",
        None,
        "unit",
    )

    def _check(self) -> None:
        super()._check()
        if self.demos_per_iter > self.n_train_seeds:
            raise ValueError("demos_per_iter cannot exceed n_train_seeds")


@dataclass
class PPOConfig(Config):
    """stable-baselines3 PPO's settings; the defaults are rl-baselines3-zoo's MiniGrid ones."""

    n_envs: int = _opt(8, "envs stepped in parallel", None, "positive")
    n_steps: int = _opt(128, "steps per env per rollout", None, "positive")
    batch_size: int = _opt(64, "steps per minibatch", None, "positive")
    n_epochs: int = _opt(10, "passes over each rollout", None, "positive")
    learning_rate: float = _opt(2.5e-4, "Adam learning rate", None, "positive")
    gamma: float = _opt(0.99, "discount factor", None, "unit")
    gae_lambda: float = _opt(0.95, "GAE lambda", None, "unit")
    clip_range: float = _opt(0.2, "PPO clip range of the on-policy ratio", None, "positive")
    ent_coef: float = _opt(0.0, "entropy bonus coefficient")
    vf_coef: float = _opt(0.5, "value loss coefficient")
    max_grad_norm: float = _opt(0.5, "gradient norm clip", None, "positive")
    n_train_seeds: int = _opt(
        500, "size of the training pool of start states (reset seeds 0..n-1)", None, "positive"
    )


@dataclass
class HERConfig(Config):
    """stable-baselines3 SAC with hindsight experience replay, after rl-baselines3-zoo's SAC
    settings for FetchReach (one gradient step of 256 transitions per env step: under equal
    env-step budgets the baseline gets its sample-efficient setting) with the original HER's
    3 x 256 network; the buffer holds 200k transitions, not 1M, because every checkpoint
    saves it."""

    learning_rate: float = _opt(1e-3, "Adam learning rate", None, "positive")
    buffer_size: int = _opt(200_000, "replay buffer capacity in transitions", None, "positive")
    batch_size: int = _opt(256, "transitions per gradient step", None, "positive")
    train_freq: int = _opt(1, "env steps between training phases", None, "positive")
    gradient_steps: int = _opt(1, "gradient steps per training phase", None, "positive")
    gamma: float = _opt(0.95, "discount factor", None, "unit")
    target_tau: float = _opt(0.05, "target network update rate (SB3's tau)", None, "unit")
    learning_starts: int = _opt(1_000, "env steps before the first gradient step")
    n_sampled_goal: int = _opt(4, "hindsight goals per real transition ('future' strategy)")
    net_width: int = _opt(256, "units in each of the 3 hidden layers", None, "positive")
    n_train_seeds: int = _opt(
        500, "size of the training pool of start states (reset seeds 0..n-1)", None, "positive"
    )
