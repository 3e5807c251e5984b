"""The methods ``--algo`` and experiment files name: an algorithm class and the settings that
make it that method. ``fixed`` settings define the method and cannot be changed; ``defaults``
can be."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hapo_rl.algos import BC, GRPO, HAPO, JSRL, HERBaseline, PPOBaseline
from hapo_rl.algos.guided import Guided
from hapo_rl.core.config import Config


@dataclass(frozen=True)
class Method:
    """An algorithm class with the settings that make it a method."""

    cls: type
    summary: str
    fixed: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def config_class(self) -> type[Config]:
        return self.cls.config_class

    @property
    def setting_names(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self.config_class)}

    @property
    def uses_teacher(self) -> bool:
        return issubclass(self.cls, Guided)

    def teaches(self, given: dict[str, Any]) -> bool:
        """Whether a run with the ``given`` settings learns from its teacher: HAPO with the
        gate shut, no warm start and no mixing (gate_ablation's never-inject) does not."""
        s = {**self.defaults, **given, **self.fixed}
        opens = s.get("gate") != "never" or s.get("warm_start_demos") or s.get("mix_every_group")
        return self.uses_teacher and bool(opens)

    def settings(
        self, name: str, given: dict[str, Any], spell: Callable[[str], str] = str
    ) -> dict[str, Any]:
        """The method's settings with ``given`` applied; ``ValueError`` names (as ``spell``
        writes it) a setting that does not apply to it or contradicts what defines it."""
        for key, value in given.items():
            if key not in self.setting_names:
                raise ValueError(f"{spell(key)} does not apply to {name}")
            if key in self.fixed and value != self.fixed[key]:
                raise ValueError(f"{name} means {spell(key)} {self.fixed[key]!r}; got {value!r}")
        return {**self.defaults, **given, **self.fixed}

    def resolved(self, name: str, given: dict[str, Any]) -> Config:
        """The config of a run of this method with the ``given`` settings."""
        return self.config_class(**self.settings(name, given))


#: The settings that make ``hapo`` the paper's configuration: none of this project's
#: sample-efficiency mechanisms, the teacher loss of LUFFY (arXiv 2504.14945).
PAPER: dict[str, Any] = {
    "horizon_cut": 0.0,
    "teacher_reuse": False,
    "teacher_replay": 0,
    "forget_by": "visit",
    "teacher_loss": "shaping",
    "shaping_gamma": 0.1,
}

#: hapo-paper's defaults where hapo's tuned defaults differ from the paper's (or from the
#: package's before tuning): settings a user may still change.
PAPER_DEFAULTS: dict[str, Any] = {"group_size": 8, "groups_per_iter": 16, "gate_prior": "uniform"}

METHODS: dict[str, Method] = {
    "hapo": Method(HAPO, "HAPO: GRPO plus gated Synthetic Success Injection"),
    "hapo-paper": Method(
        HAPO,
        "HAPO as the paper proposes it: no horizon cut, no reuse or replay of teacher episodes, "
        "LUFFY shaping, forgetting per visit",
        fixed=PAPER,
        defaults=PAPER_DEFAULTS,
    ),
    "grpo": Method(GRPO, "GRPO: group-relative policy gradient, no teacher"),
    "always-inject": Method(
        HAPO, "SSI on every all-failure group, no gate", fixed={"gate": "always"}
    ),
    "mixed": Method(
        HAPO,
        "one teacher episode joins every group, failed or not, no gate (hapo's teacher loss)",
        fixed={"mix_every_group": True},
    ),
    "bc": Method(BC, "behaviour cloning on the teacher's successful episodes only"),
    "bc-grpo": Method(
        HAPO,
        "behaviour-cloning warm start on 500 teacher episodes, then GRPO",
        fixed={"gate": "never"},
        defaults={"warm_start_demos": 500},
    ),
    "jsrl": Method(JSRL, "jump-start RL: teacher roll-in for the first h steps, h shrinking"),
    "ppo": Method(PPOBaseline, "stable-baselines3 PPO with the same network"),
    "her": Method(
        HERBaseline, "stable-baselines3 SAC with hindsight experience replay (goal tasks only)"
    ),
}


def configs(methods: dict[str, dict[str, Any]]) -> dict[str, Config]:
    """The config of each named method (``algo`` and settings, as experiment files give them;
    a run option such as ``teacher`` is left out)."""
    out = {}
    for name, table in methods.items():
        given = {k: v for k, v in table.items() if k not in ("algo", "teacher", "env_workers")}
        out[name] = METHODS[table["algo"]].resolved(table["algo"], given)
    return out


def posterior_gated(methods: dict[str, dict[str, Any]]) -> set[str]:
    """The named methods whose injections follow the per-start-state Beta posteriors (a
    method with the gate shut, always open or mixing every group keeps them unused)."""
    return {
        m
        for m, c in configs(methods).items()
        if getattr(c, "gate", "") in ("thompson", "mean") and not getattr(c, "mix_every_group", 0)
    }


def group_mean_gated(methods: dict[str, dict[str, Any]]) -> dict[str, Config]:
    """The named methods that use the paper's v1 gate, with their configs."""
    return {m: c for m, c in configs(methods).items() if getattr(c, "gate", "") == "group-mean"}
