"""Figures stated in the docs that no other test measured (issue 13 item 7, issue 12 item 10).

Each test recomputes one figure of a page and fails if the page's number is off by more
than the rounding it is printed with (or, for a stated accuracy, if the measured error is
above it), so a change of the code that moves the number shows up here. The audit that
found these is summarised in docs/reliability.md ("Figures in these docs").
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory import optimal

ROOT = Path(__file__).resolve().parents[1]


def _page(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def test_reliability_page_counts_the_boundary_table():
    """docs/reliability.md: "N cases: P (entry point, argument) pairs over E public entry
    points" is the size of tests/boundary/_cases.py."""
    from tests.boundary import _cases

    m = re.search(
        r"\((\d+)\s+cases: (\d+) \(entry point, argument\) pairs over (\d+) public entry",
        _page("reliability.md").replace("\n", " "),
    )
    assert m, "the count sentence is gone from docs/reliability.md"
    cases, pairs, entries = (int(g) for g in m.groups())
    table = _cases.ENTRIES
    assert len(_cases.cases()) == cases, "update docs/reliability.md: number of cases"
    assert len({(e[0], e[1]) for e in table}) == pairs, "update the number of pairs"
    assert len({e[0] for e in table}) == entries, "update the number of entry points"


@pytest.mark.slow  # one 2-D adaptive cubature: ~85 s wall at load 20 here
def test_high_noise_constant_as_measured_in_theory_page():
    """docs/theory.md: on 0.6 N((2,0), diag(1, 0.01)) + 0.4 N((-3,1), diag(0.2, 0.5)) at
    sigma = 100, c* - sigma^2/s^2 = 1.878741 against kappa = D tr(S^2)/(tr S)^2 = 1.878749."""
    gm = dsm.GaussianMixture([0.6, 0.4], [[2.0, 0.0], [-3.0, 1.0]], [[1.0, 0.01], [0.2, 0.5]])
    cov = np.asarray(gm.covariance())
    t1, t2 = np.trace(cov), np.trace(cov @ cov)
    kappa = 2 * t2 / t1**2
    assert abs(kappa - 1.878749) < 1e-6
    c = optimal.homoskedastic_multiplier(gm, 1.0, 100.0, method="adaptive").value
    # c* = 2808.5 to 1e-10 relative: the difference is good to ~3e-7 absolute
    assert abs((c - 100.0**2 / (t1 / 2)) - 1.878741) < 2e-6


@pytest.mark.slow  # 129 + 128 one-dimensional adaptive integrals
def test_optimal_table_interpolation_error_as_stated():
    """docs/choosing-c.md: the ``optimal`` weighting's default table (129 nodes on
    [-16, 16], cubic spline in log c*) is off by 4.0e-4 relative at its midpoints on
    bimodal_1d (measured 3.98e-4)."""
    table = optimal.OptimalWeighting(dsm.bimodal_1d(), "ve")
    assert len(table.grid) == 129
    err = table.measure_interpolation_error()
    assert 3.5e-4 < err < 4.5e-4, err


@pytest.mark.slow  # 2 x 129 c* values by adaptive cubature
def test_training_c_star_table_interpolation_error():
    """dsmtheory/train/_weighting.py: the c_star training weighting's table (65 nodes on the
    default VE schedule's λ range widened by 1) is off by at most 9.5e-5 (ring) and 1.8e-4
    (bimodal_1d) at its midpoints (measured 9.46e-5 and 1.83e-4)."""
    from dsmtheory import train
    from dsmtheory.train._weighting import c_star_weighting

    schedule = train.TrainConfig().build_schedule()
    for gm, bound in ((dsm.ring(), 9.5e-5), (dsm.bimodal_1d(), 1.9e-4)):
        params = c_star_weighting({}, schedule, gm).params
        table = optimal.OptimalWeighting(
            gm,
            "ve",
            lam_min=params["lam_min"],
            lam_max=params["lam_max"],
            num_grid=params["num_grid"],
        )
        err = table.measure_interpolation_error()
        assert 0.5 * bound < err < bound, err


@pytest.mark.slow  # one 2-D adaptive cubature of a 4-component mixture
def test_gauss_hermite_2d_accuracy_as_stated():
    """docs/variance.md and docs/reliability.md: Gauss–Hermite with the default 80 nodes per
    axis gives tr I_t of random_anisotropic(0, 4, 2) at sigma = 0.1 to 4.6e-6 relative
    (adaptive cubature, 1e-10, as the reference)."""
    from dsmtheory import variance

    pt = dsm.random_anisotropic(seed=0, num_components=4, dim=2).noised(1.0, 0.1)
    ref = float(variance.fisher_trace(pt, method="adaptive").value)
    got = float(variance.fisher_trace(pt, method="gauss_hermite").value)
    err = abs(got / ref - 1.0)
    assert 1e-6 < err < 1e-5, err


def test_mahalanobis_in_the_eigenbasis_at_condition_1e8():
    """docs/mixture.md: in each component's eigenbasis the Mahalanobis term is accurate to
    rounding however ill-conditioned the covariance; the precision form d^T S^-1 d loses
    about log10 cond digits (measured 4e-9 relative at condition number 1e8)."""
    import jax.numpy as jnp
    import mpmath as mp

    th = 0.3
    u = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    e = np.array([1.0, 1e-8])
    gm = dsm.GaussianMixture.from_eig([1.0], [[0.0, 0.0]], [e], [u])
    x = np.array([[0.3, -0.7], [1.5, 2.0], [1e-3, 2e-3]])

    def exact(xx):  # the same density in 50-digit arithmetic
        with mp.workdps(50):
            z = [
                sum(mp.mpf(float(u[i, j])) * mp.mpf(float(xx[i])) for i in range(2))
                for j in range(2)
            ]
            q = z[0] ** 2 / mp.mpf(1.0) + z[1] ** 2 / mp.mpf(1e-8)
            return float(-0.5 * q - 0.5 * mp.log((2 * mp.pi) ** 2 * mp.mpf(1e-8)))

    ref = np.array([exact(xx) for xx in x])
    lib = np.asarray(gm.log_prob(jnp.asarray(x)))
    assert np.max(np.abs(lib / ref - 1.0)) < 1e-14
    prec = np.linalg.inv(u @ np.diag(e) @ u.T)
    quad = np.array([-0.5 * xx @ prec @ xx - 0.5 * np.log((2 * np.pi) ** 2 * 1e-8) for xx in x])
    lost = np.max(np.abs(quad / ref - 1.0))
    assert 1e-9 < lost < 1e-8, lost
