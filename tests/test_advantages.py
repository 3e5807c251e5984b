import numpy as np
import pytest

from hapo_rl.core.advantages import group_advantages


def test_mean_baseline_std_scale_exact():
    r = np.array([[1.0, 0.0, 0.0, 0.0]])
    adv = group_advantages(r, eps=0.0)
    # mean 0.25, population std sqrt(0.1875)
    s = np.sqrt(0.1875)
    np.testing.assert_allclose(adv, [[0.75 / s, -0.25 / s, -0.25 / s, -0.25 / s]])


def test_no_scale_is_mean_difference():
    r = np.array([[0.5, 0.1], [0.0, 0.0]])
    np.testing.assert_allclose(group_advantages(r, scale="none"), [[0.2, -0.2], [0.0, 0.0]])


def test_leave_one_out():
    r = np.array([[3.0, 0.0, 0.0]])
    # RLOO: r_i - mean of the others
    np.testing.assert_allclose(
        group_advantages(r, baseline="loo", scale="none"), [[3.0, -1.5, -1.5]]
    )


def test_all_equal_group_collapses_to_zero():
    adv = group_advantages(np.zeros((2, 8)))
    assert np.all(adv == 0.0)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        group_advantages(np.zeros(4))
    with pytest.raises(ValueError):
        group_advantages(np.zeros((1, 4)), baseline="median")  # type: ignore[arg-type]
