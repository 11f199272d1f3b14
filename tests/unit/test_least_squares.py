"""The box-bounded least squares gridfit uses (methods.least_squares) against
scipy.optimize.least_squares (TRF), which it replaces in batch jobs: the same minimum,
cost and Jacobian, inside the box and with bounds active; and a gridfit batch job no
longer imports scipy.optimize."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import least_squares

from starbatch.methods.least_squares import least_squares_box

T = np.linspace(0, 3, 200)
TRUE = np.array([2.0, 0.7, 0.3])


def model(x):
    return x[0] * np.exp(-x[1] * T) + x[2] * np.sin(3 * T)


def residual(x, data):
    return (model(x) - data) / 0.01


@pytest.mark.parametrize(
    "lo, hi",
    [
        ([0.0, 0.0, -1.0], [5.0, 5.0, 1.0]),  # minimum inside the box
        ([0.0, 0.9, -1.0], [5.0, 5.0, 1.0]),  # the decay rate held at its lower bound
        ([0.0, 0.0, -1.0], [1.5, 5.0, 0.2]),  # two parameters at upper bounds
    ],
)
def test_same_minimum_as_scipy(lo, hi):
    rng = np.random.default_rng(3)
    data = model(TRUE) + rng.normal(0, 0.01, len(T))
    x0 = np.array([1.0, 1.0, 0.0])
    ours = least_squares_box(lambda x: residual(x, data), x0, lo, hi)
    ref = least_squares(lambda x: residual(x, data), x0, bounds=(lo, hi), method="trf")
    np.testing.assert_allclose(ours.x, ref.x, atol=1e-6)
    assert ours.cost == pytest.approx(ref.cost, rel=1e-9)
    np.testing.assert_allclose(ours.jac, ref.jac, rtol=1e-5, atol=1e-6 * np.abs(ref.jac).max())
    assert np.all(ours.x >= lo) and np.all(ours.x <= hi)


def test_start_outside_the_box_is_clipped_and_one_parameter_works():
    data = model(TRUE)
    res = least_squares_box(lambda a: residual([a[0], 0.7, 0.3], data), [9.0], [0.0], [4.0])
    assert res.x[0] == pytest.approx(2.0, abs=1e-8) and res.cost < 1e-12


def test_a_gridfit_batch_does_not_import_scipy_optimize():
    code = (
        "import sys; import starbatch.engine.runner, starbatch.analyses.gridfit, "
        "starbatch.methods.gridfit.fit, starbatch.methods.gridfit.grid, starbatch.sdss.readers; "
        "print(sorted(m for m in sys.modules if m.startswith('scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
