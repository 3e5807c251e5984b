from math import comb

import numpy as np
import pytest

from hapo_rl.core.gate import BetaGate


def beta_cdf_int(a: int, b: int, x: float) -> float:
    """P(Beta(a, b) < x) for integer a, b: P(Binomial(a + b - 1, x) >= a)."""
    n = a + b - 1
    return sum(comb(n, k) * x**k * (1 - x) ** (n - k) for k in range(a, n + 1))


def test_posterior_updates_with_forgetting_exact():
    gate = BetaGate(forgetting=0.5)
    assert gate.posterior(3) == (1.0, 1.0)
    gate.update(3, successes=2, failures=6)
    assert gate.posterior(3) == (0.5 + 2, 0.5 + 6)
    gate.update(3, successes=0, failures=8)
    assert gate.posterior(3) == (0.5 * 2.5, 0.5 * 6.5 + 8)
    assert gate.posterior(4) == (1.0, 1.0)  # keys are independent


def test_global_key_pools_all_start_states():
    gate = BetaGate(per_key=False, forgetting=1.0)
    gate.update(1, 1, 0)
    gate.update(2, 0, 1)
    assert gate.posterior(99) == (2.0, 2.0)


def test_empirical_prior_centres_on_global_rate():
    gate = BetaGate(prior="empirical", prior_strength=4.0, forgetting=1.0)
    gate.update(1, 6, 2)
    a, b = gate.posterior(2)
    assert a / (a + b) == pytest.approx(0.75)
    assert a + b == pytest.approx(4.0)


@pytest.mark.parametrize("p", [0.05, 0.2, 0.4])
def test_injection_frequency_matches_formula(p):
    """P(inject) = (1 - p)^G * P(Beta(alpha, beta) < tau) for a policy of success p."""
    g, tau, a, b = 8, 0.5, 2, 5
    gate = BetaGate(tau=tau)
    gate.alpha[0], gate.beta[0] = float(a), float(b)
    rng = np.random.default_rng(0)
    n = 40_000
    injected = 0
    for _ in range(n):
        if rng.binomial(g, p) == 0 and gate.should_inject(0, rng):
            injected += 1
    expected = (1 - p) ** g * beta_cdf_int(a, b, tau)
    assert injected / n == pytest.approx(expected, abs=4 * np.sqrt(expected / n) + 1e-3)


def test_modes():
    rng = np.random.default_rng(0)
    assert BetaGate(mode="always").should_inject(0, rng)
    assert not BetaGate(mode="never").should_inject(0, rng)
    mean_gate = BetaGate(mode="mean", tau=0.5)
    mean_gate.alpha[0], mean_gate.beta[0] = 1.0, 3.0  # mean 0.25
    assert mean_gate.should_inject(0, rng)
    mean_gate.alpha[0], mean_gate.beta[0] = 3.0, 1.0
    assert not mean_gate.should_inject(0, rng)
    fixed = BetaGate(mode="fixed", fixed_prob=0.3)
    freq = np.mean([fixed.should_inject(0, rng) for _ in range(20_000)])
    assert freq == pytest.approx(0.3, abs=0.02)


def test_adaptive_threshold_anneals_with_success():
    gate = BetaGate(tau=0.6, adaptive_tau=True, forgetting=1.0)
    assert gate.threshold == pytest.approx(0.6)
    gate.update(0, 3, 1)
    assert gate.threshold == pytest.approx(0.6 * 0.25)


def test_injection_vanishes_as_policy_improves():
    """Simulated policy whose success rises to 1: the injection rate falls to zero."""
    gate = BetaGate()
    rng = np.random.default_rng(1)
    keys, g = range(20), 8
    rates = []
    for it in range(200):
        p = min(1.0, it / 100)
        inj = 0
        for k in keys:
            s = rng.binomial(g, p)
            gate.update(k, s, g - s)
            inj += s == 0 and gate.should_inject(k, rng)
        rates.append(inj / len(keys))
    assert np.mean(rates[:3]) > 0.8
    assert sum(rates[110:]) == 0


def test_rejects_bad_settings():
    with pytest.raises(ValueError):
        BetaGate(forgetting=0.0)
    with pytest.raises(ValueError):
        BetaGate(tau=1.5)
