"""Small synthetic data sets shared by the data-set, fit and rank-tolerance tests."""

import numpy as np
import pytest


def sklearn_mixture():
    """``sklearn.mixture`` (optional extra dsmtheory[data]; CI installs it, the test extra
    includes data)."""
    return pytest.importorskip("sklearn.mixture", reason="needs the optional extra [data]")


def subspace_data(n=400, d=6, r=3, seed=0):
    """n points in d dimensions lying exactly in an r-dimensional subspace, two clusters."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :r]
    z = rng.normal(size=(n, r)) * np.array([1.0, 0.7, 0.4])[:r]
    z[: n // 2] += 3.0
    return z @ basis.T + 0.5


def data64(n=300, seed=0):
    """n points in 64 dimensions near three 8-dimensional affine pieces, on [-1, 1]-ish
    scales like an image's."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        basis = np.linalg.qr(rng.normal(size=(64, 64)))[0][:, :8]
        z = rng.normal(size=(n // 3, 8)) * 0.3
        out.append(z @ basis.T + rng.uniform(-0.5, 0.5, 64))
    return np.concatenate(out)
