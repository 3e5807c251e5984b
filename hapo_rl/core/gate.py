"""The gates that decide when a group gets a teacher episode: the Beta-Binomial Thompson gate
per start state for all-failure groups (this project's), and the paper's v1 rule on each
group's own successes."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.special import betainc
from scipy.stats import binom

GateMode = Literal["thompson", "mean", "fixed", "always", "never", "group-mean"]
Prior = Literal["uniform", "empirical"]
_GLOBAL = "__global__"


def group_mean_rate(p: np.ndarray | float, n: int, tau: float) -> np.ndarray:
    """The share of groups the v1 rule gives a teacher episode, for a policy that succeeds with
    probability ``p``: ``P((1 + S) / (n + 2) < tau)`` with ``S ~ Binomial(n, p)`` (``n = 8``,
    ``tau = 0.8``: ``P(S <= 6)``, 0.187 at ``p = 0.9``)."""
    fire = [s for s in range(n + 1) if (1 + s) / (n + 2) < tau]
    return binom.cdf(max(fire), n, p) if fire else np.zeros_like(np.asarray(p, float))


@dataclass
class BetaGate:
    """Per start-state posterior ``Beta(alpha_k, beta_k)`` over the policy's success probability.

    ``mode`` picks the decision for an all-failure group: ``"thompson"`` draws ``p`` from the
    posterior and injects iff ``p < tau``; ``"mean"`` compares the posterior mean instead;
    ``"fixed"`` injects with probability ``fixed_prob``; ``"always"`` and ``"never"`` ignore the
    posterior (always-inject and GRPO). ``"group-mean"`` is the paper's v1 rule as a reviewer
    reads it (``group_mean_fires``): any group, failed or not, whose own posterior mean
    ``(1 + S) / (N + 2)`` is below ``tau`` gets a teacher episode. With ``adaptive_tau`` the
    threshold is ``tau * (1 - global success rate)``, which anneals as the policy improves (for
    ``"group-mean"``: this project's stand-in for the paper's v2 annealing, whose schedule is not
    known here). ``per_key=False``
    keeps one posterior for all start states (the global-key ablation).

    ``forget_by`` says when ``forgetting`` lambda applies: ``"visit"`` discounts a key's
    posterior each time the key is updated; ``"iteration"`` (discounted Thompson sampling)
    discounts every key once per ``tick`` (one iteration), towards the prior, so a key not
    visited for a while reverts to the prior (with the empirical prior: to the global success
    rate) instead of keeping an old verdict on a policy that has changed since.
    """

    mode: GateMode = "thompson"
    tau: float = 0.5
    forgetting: float = 0.9
    per_key: bool = True
    prior: Prior = "uniform"
    prior_strength: float = 2.0
    adaptive_tau: bool = False
    fixed_prob: float = 0.5
    forget_by: Literal["visit", "iteration"] = "visit"
    alpha: dict[Hashable, float] = field(default_factory=dict)
    beta: dict[Hashable, float] = field(default_factory=dict)
    seen: dict[Hashable, int] = field(default_factory=dict)  # the tick of each key's update
    clock: int = 0
    global_successes: float = 0.0
    global_trials: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.forgetting <= 1.0:
            raise ValueError(f"forgetting must be in (0, 1], got {self.forgetting}")
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {self.tau}")
        if self.forget_by not in ("visit", "iteration"):
            raise ValueError(f"forget_by must be visit or iteration, got {self.forget_by!r}")

    def _key(self, key: Hashable) -> Hashable:
        return key if self.per_key else _GLOBAL

    @property
    def global_success_rate(self) -> float:
        """Success rate of all on-policy episodes so far, discounted by ``forgetting`` (per
        update, or per tick with ``forget_by = "iteration"``)."""
        return self.global_successes / self.global_trials if self.global_trials else 0.0

    def prior_params(self) -> tuple[float, float]:
        """``(alpha, beta)`` of a new key's prior now."""
        if self.prior == "empirical":
            m = min(max(self.global_success_rate, 0.01), 0.99)
            return m * self.prior_strength, (1.0 - m) * self.prior_strength
        return 1.0, 1.0

    def posterior(self, key: Hashable) -> tuple[float, float]:
        """``(alpha, beta)`` for ``key``; an unseen key gets the prior. With ``forget_by =
        "iteration"`` a key last updated ``t`` ticks ago is ``lambda^t`` of its stored
        posterior plus ``1 - lambda^t`` of the prior."""
        k = self._key(key)
        if k not in self.alpha:
            return self.prior_params()
        a, b = self.alpha[k], self.beta[k]
        age = self.clock - self.seen.get(k, self.clock)
        if self.forget_by == "iteration" and age > 0:
            w = self.forgetting**age
            pa, pb = self.prior_params()
            return w * a + (1 - w) * pa, w * b + (1 - w) * pb
        return a, b

    def tick(self) -> None:
        """One iteration has passed: with ``forget_by = "iteration"`` every posterior and the
        global success rate are discounted once."""
        self.clock += 1
        if self.forget_by == "iteration":
            self.global_successes *= self.forgetting
            self.global_trials *= self.forgetting

    def posterior_mean(self, key: Hashable) -> float:
        a, b = self.posterior(key)
        return a / (a + b)

    def update(self, key: Hashable, successes: int, failures: int) -> None:
        """Fold one on-policy group's outcome into the posterior of ``key``."""
        a, b = self.posterior(key)
        k = self._key(key)
        lam = self.forgetting if self.forget_by == "visit" else 1.0  # else: by tick, above
        self.alpha[k] = lam * a + successes
        self.beta[k] = lam * b + failures
        self.seen[k] = self.clock
        self.global_successes = lam * self.global_successes + successes
        self.global_trials = lam * self.global_trials + successes + failures

    @property
    def threshold(self) -> float:
        if self.adaptive_tau:
            return self.tau * (1.0 - self.global_success_rate)
        return self.tau

    def group_mean_fires(self, successes: int, n: int) -> bool:
        """The v1 rule: a group of ``n`` episodes with ``successes`` gets a teacher episode iff
        ``(1 + successes) / (n + 2) < threshold`` (with ``n = 8``, ``tau = 0.8``: up to 6
        successes)."""
        return (1 + successes) / (n + 2) < self.threshold

    def injection_probability(self, key: Hashable) -> float:
        """Probability that an all-failure group of ``key`` gets a teacher episode now (for
        ``"group-mean"``, which looks at no posterior: the posterior probability that the
        success rate is below the threshold)."""
        if self.mode in ("always", "never"):
            return float(self.mode == "always")
        if self.mode == "fixed":
            return self.fixed_prob
        a, b = self.posterior(key)
        if self.mode == "mean":
            return float(a / (a + b) < self.threshold)
        return float(betainc(a, b, self.threshold))  # P(p < threshold), p ~ Beta(a, b)

    def open_probability(self, key: Hashable) -> float:
        """The posterior probability that the policy's success on ``key`` is below the
        threshold, whatever the mode decides for injection (0 for ``"never"``): what HAPO's
        horizon cut and replay follow, so that they fade with the posterior in every method."""
        if self.mode == "never":
            return 0.0
        a, b = self.posterior(key)
        return float(betainc(a, b, self.threshold))

    def draw_open(self, key: Hashable, rng: np.random.Generator) -> bool:
        """A Thompson draw from ``key``'s posterior below the threshold (never for
        ``"never"``): true with probability ``open_probability(key)``."""
        if self.mode == "never":
            return False
        return bool(rng.beta(*self.posterior(key)) < self.threshold)

    def snapshot(self) -> dict[str, np.ndarray]:
        """Every key seen so far with its posterior and injection probability."""
        keys = list(self.alpha)
        return {
            "start_state": np.array([-1 if k == _GLOBAL else k for k in keys]),
            "alpha": np.array([self.posterior(k)[0] for k in keys]),
            "beta": np.array([self.posterior(k)[1] for k in keys]),
            "posterior_mean": np.array([self.posterior_mean(k) for k in keys]),
            "inject_prob": np.array([self.injection_probability(k) for k in keys]),
        }

    def should_inject(self, key: Hashable, rng: np.random.Generator) -> bool:
        """The decision for an all-failure group of ``key``."""
        if self.mode == "never":
            return False
        if self.mode == "always":
            return True
        if self.mode == "fixed":
            return bool(rng.random() < self.fixed_prob)
        if self.mode == "group-mean":
            raise ValueError("the group-mean gate decides on a group's size: group_mean_fires")
        a, b = self.posterior(key)
        p = rng.beta(a, b) if self.mode == "thompson" else a / (a + b)
        return bool(p < self.threshold)
