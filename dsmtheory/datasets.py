r"""Realistic Gaussian mixtures built in: scikit-learn's digits and natural-image patches,
and any fitted scikit-learn mixture (:func:`from_sklearn`).

Everything dsmtheory computes is exact for a Gaussian mixture; these are mixtures fitted to
real data, so that the analyses can be run where real data lives: in 64 dimensions, near a
low-dimensional set. Two data sets are built in (docs/datasets.md has the table):

* :func:`digits`: scikit-learn's bundled handwritten digits, 1797 images of 8×8 pixels with
  integer grey levels 0..16, scaled to $[-1, 1]$ by $x \mapsto x/8 - 1$ (D = 64).
* :func:`image_patches`: ``size``×``size`` patches of six of scikit-image's bundled
  photographs (:data:`PATCH_IMAGES`: astronaut, camera, chelsea, coffee, coins, moon; all
  PNG, so decoding is lossless and exact), converted to grey by
  $Y = 0.2125 R + 0.7154 G + 0.0721 B$ (ITU-R BT.709 luma, as ``skimage.color.rgb2gray``) on
  $[0, 1]$, scaled to $[-1, 1]$ by $y \mapsto 2y - 1$, and with the patch mean (DC) removed,
  as in the EPLL patch prior of Zoran & Weiss (2011). :data:`NUM_PATCHES` = 12 000 patches
  (2000 per image), top-left corners drawn uniformly (with replacement) by
  ``numpy.random.default_rng(PATCH_SEED)`` (:data:`PATCH_SEED` = 0), image by image in the
  order above; the patch set does not depend on the fit's ``seed``. Every DC-removed patch is
  orthogonal to the all-ones vector, so every fitted component has one direction of zero
  data variance: the patch mixture is rank-deficient by construction.

Both are fitted by maximum likelihood (EM) with scikit-learn's
:class:`sklearn.mixture.GaussianMixture` with the fixed settings :data:`FIT_SETTINGS`:
full covariances, ``reg_covar = 1e-6``, ``n_init = 1``, ``max_iter = 500``, ``tol = 1e-3``
(on the change of the mean log-likelihood per sample), ``init_params = "k-means++"``
(seeded k-means++ centres, no Lloyd iterations) and ``random_state = seed``; BLAS and OpenMP
are limited to one thread during the fit (threadpoolctl), so that a fit does not depend on
the machine's thread count. The M-step covariance of component k is

$$\Sigma_k=\frac{1}{N_k}\sum_n r_{nk}(x_n-\mu_k)(x_n-\mu_k)^\top+\rho I,\qquad
\rho=\texttt{reg\_covar},$$

so every eigenvalue is (data variance in that direction) + ρ: a direction with no data
variance sits exactly on the *floor* ρ. Real data has many (a component with $N_k$ points
has at most $N_k-1$ directions of nonzero variance, and image data is near a
low-dimensional set anyway). Measured here (:data:`FIT_SETTINGS`, seed 0): a median of
13.5 (range 9–18) of the 64 eigenvalues per component on the floor for digits with K = 10,
31.5 (13–58) with K = 50, and 7 (1–59) for patches with K = 20 (docs/datasets.md has
the table).

``rank_tol`` clips the floor to exact zeros: every eigenvalue $e_{ki}\le$ ``rank_tol`` is
set to exactly 0 (an **absolute** threshold, in the data's squared units, like
``reg_covar``; a natural choice is a small multiple of it, e.g. ``rank_tol = 1e-5``). The
mixture then has rank-deficient components of rank $r_k$ (its low-noise limit
$c^*(0^+)=D/\bar d$ with $\bar d=\sum_k\pi_k r_k$, FORMULAS.md §6 and issue 14). With
``rank_tol=None`` the floor is kept and every component is full rank.

Fits are cached in the user's cache folder (:func:`cache_dir`: ``$DSMTHEORY_CACHE_DIR``,
else ``$XDG_CACHE_HOME/dsmtheory/datasets``, else ``~/.cache/dsmtheory/datasets``), one
``.npz`` per fit, written atomically. The cache key is a SHA-256 of every setting of the fit,
the SHA-256 of the data array itself, and the versions of scikit-learn, NumPy and SciPy, so
a cached fit is returned only for the same data, settings and libraries; ``rank_tol`` is
applied after the cache (changing it never refits). The same ``seed`` gives a bit-identical
mixture, fresh or cached (the cache holds scikit-learn's float64 arrays exactly, and the
same code builds the mixture from them); across machines (other BLAS kernels) fits agree
to rounding, not bit for bit.

The data sets need the optional extra ``pip install "dsmtheory[data]"`` (scikit-learn,
scikit-image); without it they raise :class:`MissingDependencyError` naming that command.
This module imports neither at import time.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import _io
from .mixture import GaussianMixture

__all__ = [
    "CACHE_ENV",
    "COVARIANCE_TYPES",
    "FIT_SETTINGS",
    "FLOOR_RTOL",
    "NAMES",
    "NUM_PATCHES",
    "PATCH_IMAGES",
    "PATCH_SEED",
    "EigenvalueFloor",
    "FitError",
    "FitInfo",
    "MissingDependencyError",
    "cache_dir",
    "digits",
    "digits_data",
    "fit",
    "fit_sklearn",
    "from_sklearn",
    "from_spec",
    "image_patches",
    "image_patches_data",
    "is_spec",
    "parse_spec",
    "spec_dim",
]

#: Environment variable naming the folder of the dataset cache (overrides the default).
CACHE_ENV = "DSMTHEORY_CACHE_DIR"
#: The fixed scikit-learn ``GaussianMixture`` settings of the built-in data sets (and the
#: defaults of :func:`fit` and ``dsmtheory fit``).
FIT_SETTINGS = {
    "covariance_type": "full",
    "reg_covar": 1e-6,
    "n_init": 1,
    "max_iter": 500,
    "tol": 1e-3,
    "init_params": "k-means++",
}
#: scikit-learn's covariance types, all accepted by :func:`from_sklearn`.
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: An eigenvalue $e\le(1+\text{FLOOR\_RTOL})\,\rho$ counts as "on the floor" ρ = reg_covar:
#: its direction carries less than 1 % of the floor in data variance.
FLOOR_RTOL = 1e-2
#: The scikit-image photographs the patches are cut from, in sampling order.
PATCH_IMAGES = ("astronaut", "camera", "chelsea", "coffee", "coins", "moon")
#: Patches drawn in all (split as evenly as possible over :data:`PATCH_IMAGES`).
NUM_PATCHES = 12_000
#: Seed of ``numpy.random.default_rng`` for the patch positions (fixed: the data set does
#: not change with the fit's seed).
PATCH_SEED = 0
#: Names accepted by :func:`from_spec` (``"digits:10"``, ``"patches:20"``).
NAMES = ("digits", "patches")

_EXTRA = 'pip install "dsmtheory[data]"'
_CACHE_FORMAT = 1
_LUMA = (0.2125, 0.7154, 0.0721)
_MAX_SEED = 2**32 - 1  # scikit-learn's random_state
_MAX_PATCH_SIZE = 8  # D = size**2 <= 64, the dense mixtures' valid domain (DESIGN.md)
_MAX_PATCHES = 1_000_000


class MissingDependencyError(ImportError):
    """An optional dependency of the data sets (scikit-learn or scikit-image) is missing;
    the message names ``pip install "dsmtheory[data]"``."""


class FitError(ValueError):
    """scikit-learn could not fit the mixture to the data (e.g. a component with an
    ill-defined covariance: too few points, or ``reg_covar`` too small)."""


class EigenvalueFloor(NamedTuple):
    r"""The regularisation floor found in a fitted mixture, and what ``rank_tol`` removed.

    Attributes:
        floor: the floor ρ (the model's ``reg_covar``).
        on_floor: ``(K,)`` per component, the number of eigenvalues
            $e\le(1+\text{FLOOR\_RTOL})\rho$ (directions without data variance).
        min_eigenvalue: ``(K,)`` per component, its smallest eigenvalue before clipping.
        rank_tol: the threshold applied (``None``: nothing clipped).
        zeroed: ``(K,)`` per component, the number of eigenvalues set to exactly 0.
        ranks: ``(K,)`` per component, its rank after clipping, $r_k = D -$ ``zeroed``.
        mean_rank: $\bar d=\sum_k\pi_k r_k$ (D when nothing was clipped).
    """

    floor: float
    on_floor: np.ndarray
    min_eigenvalue: np.ndarray
    rank_tol: float | None
    zeroed: np.ndarray
    ranks: np.ndarray
    mean_rank: float

    @property
    def median_on_floor(self) -> float:
        """The median over components of :attr:`on_floor`."""
        return float(np.median(self.on_floor))


class FitInfo(NamedTuple):
    """How a mixture was fitted (``return_info=True`` of :func:`fit` and the data sets).

    Attributes:
        dataset: ``"digits"``, ``"patches"``, or ``None`` for a user's data.
        num_samples: N, the number of data points fitted.
        dim: D.
        num_components: K.
        seed: the fit's ``random_state``.
        settings: the scikit-learn settings (:data:`FIT_SETTINGS` keys).
        converged: scikit-learn's ``converged_``.
        n_iter: EM iterations of the best initialisation (``n_iter_``).
        lower_bound: mean log-likelihood per sample at the end (``lower_bound_``).
        fit_seconds: wall time of the fit (of the original fit when read from the cache).
        cached: whether the fit was read from the cache.
        cache_path: the cache file (``None`` when not cached).
        data_sha256: SHA-256 of the float64 data array fitted.
        floor: the :class:`EigenvalueFloor`.
    """

    dataset: str | None
    num_samples: int
    dim: int
    num_components: int
    seed: int
    settings: dict
    converged: bool
    n_iter: int
    lower_bound: float
    fit_seconds: float
    cached: bool
    cache_path: str | None
    data_sha256: str
    floor: EigenvalueFloor


# ---------------------------------------------------------------------------------------
# optional dependencies
# ---------------------------------------------------------------------------------------
def _require(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = {"sklearn": "scikit-learn", "skimage": "scikit-image"}[module.split(".")[0]]
        raise MissingDependencyError(
            f"{what} needs {package}, an optional dependency: {_EXTRA}",
            name=module.split(".")[0],
        ) from exc


# ---------------------------------------------------------------------------------------
# the data
# ---------------------------------------------------------------------------------------
def digits_data() -> np.ndarray:
    r"""scikit-learn's bundled digits as a ``(1797, 64)`` float64 array on $[-1, 1]$.

    Each 8×8 image (grey levels 0..16, row-major) is scaled by $x\mapsto x/8-1$.

    Raises:
        MissingDependencyError: scikit-learn is not installed.
    """
    sk_datasets = _require("sklearn.datasets", "dsmtheory.datasets.digits")
    x = np.asarray(sk_datasets.load_digits().data, dtype=np.float64)
    return x / 8.0 - 1.0


def image_patches_data(size: int = 8, *, num_patches: int = NUM_PATCHES) -> np.ndarray:
    r"""DC-removed grey ``size``×``size`` patches of scikit-image's photographs,
    ``(num_patches, size**2)`` float64.

    Each image of :data:`PATCH_IMAGES` is converted to grey $Y=0.2125R+0.7154G+0.0721B$ on
    $[0,1]$ and scaled to $2Y-1\in[-1,1]$; ``num_patches`` top-left corners are drawn
    uniformly with ``numpy.random.default_rng(PATCH_SEED)`` (image by image, as evenly as
    possible, the first images taking the remainder); each patch is flattened row-major and
    its mean subtracted (every row sums to 0 up to rounding).

    Args:
        size: patch side, 2 to 8 (D = size² ≤ 64, the dense mixtures' valid domain).
        num_patches: patches in all, ≥ 6 (one per image) and ≤ 1 000 000.

    Raises:
        ValueError: ``size`` or ``num_patches`` out of range.
        MissingDependencyError: scikit-image is not installed.
    """
    size = _check_int(size, "size", 2, _MAX_PATCH_SIZE)
    num_patches = _check_int(num_patches, "num_patches", len(PATCH_IMAGES), _MAX_PATCHES)
    sk_data = _require("skimage.data", "dsmtheory.datasets.image_patches")
    rng = np.random.default_rng(PATCH_SEED)
    per_image, extra = divmod(num_patches, len(PATCH_IMAGES))
    out = []
    for i, name in enumerate(PATCH_IMAGES):
        img = np.asarray(getattr(sk_data, name)(), dtype=np.float64) / 255.0
        if img.ndim == 3:
            img = img[..., :3] @ np.asarray(_LUMA)
        img = 2.0 * img - 1.0
        n = per_image + (1 if i < extra else 0)
        rows = rng.integers(0, img.shape[0] - size + 1, n)
        cols = rng.integers(0, img.shape[1] - size + 1, n)
        windows = np.lib.stride_tricks.sliding_window_view(img, (size, size))
        out.append(windows[rows, cols].reshape(n, size * size))
    patches = np.concatenate(out)
    return patches - patches.mean(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------
def fit_sklearn(
    data,
    num_components: int,
    *,
    seed: int = 0,
    covariance_type: str = FIT_SETTINGS["covariance_type"],
    reg_covar: float = FIT_SETTINGS["reg_covar"],
    n_init: int = FIT_SETTINGS["n_init"],
    max_iter: int = FIT_SETTINGS["max_iter"],
    tol: float = FIT_SETTINGS["tol"],
    init_params: str = FIT_SETTINGS["init_params"],
):
    """Fit scikit-learn's ``GaussianMixture`` to ``data`` with one BLAS/OpenMP thread.

    Args:
        data: ``(N, D)`` real array (``(N,)`` is one-dimensional data), finite.
        num_components: K, 1 ≤ K ≤ N.
        seed: ``random_state``, an integer in [0, 2**32 - 1].
        covariance_type, reg_covar, n_init, max_iter, tol, init_params: scikit-learn's
            settings (defaults :data:`FIT_SETTINGS`).

    Returns:
        ``(model, seconds)``: the fitted ``sklearn.mixture.GaussianMixture`` and the wall
        time of its ``fit``.

    Raises:
        ValueError/TypeError: a bad argument, named.
        FitError: scikit-learn could not fit (an ill-defined covariance).
        MissingDependencyError: scikit-learn is not installed.
    """
    x = _check_data(data)
    settings = _check_settings(
        covariance_type=covariance_type, reg_covar=reg_covar, n_init=n_init,
        max_iter=max_iter, tol=tol, init_params=init_params,
    )  # fmt: skip
    k = _check_int(num_components, "num_components", 1, x.shape[0])
    seed = _check_int(seed, "seed", 0, _MAX_SEED)
    mixture_mod = _require("sklearn.mixture", "fitting a mixture (dsmtheory.datasets)")
    threadpoolctl = _require("threadpoolctl", "fitting a mixture (dsmtheory.datasets)")
    model = mixture_mod.GaussianMixture(k, random_state=seed, **settings)
    start = time.perf_counter()
    try:
        with threadpoolctl.threadpool_limits(limits=1):
            model.fit(x)
    except ValueError as exc:
        text = " ".join(str(exc).split())
        raise FitError(f"scikit-learn could not fit {k} components: {text}") from exc
    return model, time.perf_counter() - start


def fit(
    data,
    num_components: int,
    *,
    seed: int = 0,
    covariance_type: str = FIT_SETTINGS["covariance_type"],
    reg_covar: float = FIT_SETTINGS["reg_covar"],
    n_init: int = FIT_SETTINGS["n_init"],
    max_iter: int = FIT_SETTINGS["max_iter"],
    tol: float = FIT_SETTINGS["tol"],
    init_params: str = FIT_SETTINGS["init_params"],
    rank_tol: float | None = None,
    return_info: bool = False,
):
    r"""Fit a Gaussian mixture to a user's data (scikit-learn EM, :func:`fit_sklearn`) and
    convert it (:func:`from_sklearn`); no cache.

    Args:
        data: ``(N, D)`` real array, finite.
        num_components: K.
        seed, covariance_type, reg_covar, n_init, max_iter, tol, init_params: as in
            :func:`fit_sklearn`.
        rank_tol: eigenvalues ≤ ``rank_tol`` (absolute) become exactly 0; ``None`` keeps
            the floor.
        return_info: also return a :class:`FitInfo`.

    Returns:
        The :class:`~dsmtheory.GaussianMixture`, or ``(mixture, FitInfo)``.

    Example:
        >>> import numpy as np, dsmtheory as dsm
        >>> x = np.random.default_rng(0).normal(size=(500, 3))
        >>> gm = dsm.datasets.fit(x, 2, seed=0)  # doctest: +SKIP
    """
    x = _check_data(data)
    rank_tol = _check_rank_tol(rank_tol)
    model, seconds = fit_sklearn(
        x, num_components, seed=seed, covariance_type=covariance_type, reg_covar=reg_covar,
        n_init=n_init, max_iter=max_iter, tol=tol, init_params=init_params,
    )  # fmt: skip
    gm, floor = from_sklearn(model, rank_tol, return_info=True)
    if not return_info:
        return gm
    info = FitInfo(
        None, x.shape[0], x.shape[1], int(num_components), int(seed),
        _check_settings(covariance_type=covariance_type, reg_covar=reg_covar, n_init=n_init,
                        max_iter=max_iter, tol=tol, init_params=init_params),
        bool(model.converged_), int(model.n_iter_), float(model.lower_bound_), seconds,
        False, None, _sha256(x), floor,
    )  # fmt: skip
    return gm, info


def from_sklearn(model, rank_tol: float | None = None, *, return_info: bool = False):
    r"""Convert a fitted scikit-learn mixture of any covariance type to a
    :class:`~dsmtheory.GaussianMixture`, clipping its regularisation floor if asked.

    ``model`` is a fitted ``sklearn.mixture.GaussianMixture`` (or a
    ``BayesianGaussianMixture``: then the plug-in mixture of its ``weights_``, ``means_``
    and ``covariances_``, which is not what its ``score_samples`` computes) with
    ``covariance_type`` ``"full"`` (``covariances_`` ``(K, D, D)``), ``"tied"``
    (``(D, D)``, shared by every component), ``"diag"`` (``(K, D)``) or ``"spherical"``
    (``(K,)``); the result has the same density (``log_prob`` equals the model's
    ``score_samples`` to rounding, ~1e-10, tested for each type).

    The floor ρ = ``model.reg_covar`` is reported per component (:class:`EigenvalueFloor`:
    eigenvalues within :data:`FLOOR_RTOL` of ρ). With ``rank_tol`` every eigenvalue
    $e_{ki}\le$ ``rank_tol`` of a component covariance $\Sigma_k=U_k\,\mathrm{diag}(e_k)
    U_k^\top$ is set to exactly 0 (an absolute threshold, as ``reg_covar`` is absolute):
    $\Sigma_k\mapsto U_k\,\mathrm{diag}(e_k\,[e_k>\texttt{rank\_tol}])\,U_k^\top$; for
    ``"diag"`` the variances themselves, for ``"spherical"`` the one variance (a component
    whose variance is clipped is an atom).

    Args:
        model: the fitted scikit-learn mixture.
        rank_tol: ``None`` (keep the floor) or a finite number ≥ 0.
        return_info: also return the :class:`EigenvalueFloor`.

    Returns:
        The mixture, or ``(mixture, EigenvalueFloor)`` if ``return_info``.

    Raises:
        TypeError: ``model`` is not a fitted scikit-learn mixture.
        ValueError: an unknown ``covariance_type``, a bad ``rank_tol``, or parameters the
            mixture refuses (named).

    Example:
        >>> from sklearn.mixture import GaussianMixture as SkGM  # doctest: +SKIP
        >>> sk = SkGM(3, covariance_type="diag", random_state=0).fit(x)  # doctest: +SKIP
        >>> gm = dsm.from_sklearn(sk)  # doctest: +SKIP
    """
    rank_tol = _check_rank_tol(rank_tol)
    for attr in ("covariance_type", "weights_", "means_", "covariances_"):
        if not hasattr(model, attr):
            raise TypeError(
                "model must be a fitted scikit-learn GaussianMixture (or "
                f"BayesianGaussianMixture); {type(model).__name__} has no {attr!r}"
                + (" (call fit first)" if attr != "covariance_type" else "")
            )
    reg = getattr(model, "reg_covar", 0.0)
    return _from_arrays(
        model.covariance_type, model.weights_, model.means_, model.covariances_,
        float(reg), rank_tol, return_info,
    )  # fmt: skip


def _from_arrays(cov_type, weights, means, covariances, reg_covar, rank_tol, return_info):
    """The mixture (and its floor) from scikit-learn's arrays: one code path for a fresh
    fit and a cached one, so that both give bit-identical mixtures."""
    if cov_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"model.covariance_type must be one of {', '.join(COVARIANCE_TYPES)}, got {cov_type!r}"
        )
    w = np.asarray(weights, dtype=np.float64)
    mu = np.asarray(means, dtype=np.float64)
    c = np.asarray(covariances, dtype=np.float64)
    if mu.ndim != 2 or w.shape != (mu.shape[0],):
        raise ValueError(
            f"model.means_ must have shape (K, D) and weights_ (K,), got {mu.shape} and {w.shape}"
        )
    k, d = mu.shape
    expected = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[cov_type]
    if c.shape != expected:
        raise ValueError(
            f"model.covariances_ must have shape {expected} for covariance_type "
            f"{cov_type!r}, got {c.shape}"
        )
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(mu)) and np.all(np.isfinite(w))):
        raise ValueError("model's weights_, means_ and covariances_ must be finite")
    eigvecs = None
    if cov_type in ("full", "tied"):
        full = c if cov_type == "full" else np.broadcast_to(c, (k, d, d))
        full = 0.5 * (full + np.swapaxes(full, -1, -2))
        e, eigvecs = np.linalg.eigh(full)
    elif cov_type == "diag":
        e = c.copy()
    else:
        e = np.repeat(c[:, None], d, axis=1)
    on_floor = np.sum(e <= (1.0 + FLOOR_RTOL) * reg_covar, axis=1)
    min_e = e.min(axis=1)
    zero = np.zeros_like(e, dtype=bool) if rank_tol is None else e <= rank_tol
    e_kept = np.where(zero, 0.0, e)
    zeroed = zero.sum(axis=1)
    ranks = d - zeroed
    floor = EigenvalueFloor(
        reg_covar, on_floor, min_e, rank_tol, zeroed, ranks, float(w @ ranks / w.sum())
    )
    if cov_type == "spherical":
        gm = GaussianMixture(w, mu, e_kept[:, 0])
    elif cov_type == "diag":
        gm = GaussianMixture(w, mu, e_kept)
    elif rank_tol is None:
        gm = GaussianMixture(w, mu, c if cov_type == "full" else np.broadcast_to(c, (k, d, d)))
    else:
        gm = _from_clipped_eig(w, mu, e_kept, eigvecs)
    return (gm, floor) if return_info else gm


def _from_clipped_eig(w, mu, e, u):
    """A full-covariance mixture from eigenpairs with exact zeros: the covariances
    ``U diag(e) Uᵀ`` (exactly symmetric), checked by the mixture's own constructor."""
    covs = np.einsum("kij,kj,klj->kil", u, e, u)
    covs = 0.5 * (covs + np.swapaxes(covs, -1, -2))
    return GaussianMixture(w, mu, covs)


# ---------------------------------------------------------------------------------------
# the built-in data sets
# ---------------------------------------------------------------------------------------
def digits(
    num_components: int = 10,
    seed: int = 0,
    rank_tol: float | None = None,
    *,
    cache: bool = True,
    return_info: bool = False,
    on_fit=None,
):
    r"""A Gaussian mixture fitted to scikit-learn's digits (D = 64, N = 1797, on [−1, 1]).

    Fitted with :data:`FIT_SETTINGS` (full covariances, ``reg_covar = 1e-6``); see the
    module docstring for the data, the fit, the floor and the cache. Measured (seed 0):
    13.5 (K = 10) and 31.5 (K = 50) of 64 eigenvalues per component on the floor (median);
    fit time 0.6 s for either on one thread here (docs/datasets.md).

    Args:
        num_components: K, 1 to 1797.
        seed: the fit's ``random_state``, an integer in [0, 2**32 - 1].
        rank_tol: eigenvalues ≤ ``rank_tol`` (absolute; e.g. 1e-5) become exactly 0; the
            default ``None`` keeps the floor (every component full rank).
        cache: read and write the cache (:func:`cache_dir`).
        return_info: also return the :class:`FitInfo`.
        on_fit: ``None`` or a function called with a one-line message just before a fit
            that is not in the cache starts (the command line prints it).

    Returns:
        The :class:`~dsmtheory.GaussianMixture` (K, D = 64), or ``(mixture, FitInfo)``.

    Raises:
        MissingDependencyError: scikit-learn is missing (``pip install "dsmtheory[data]"``).
        ValueError: a bad argument, named.

    Example:
        >>> import dsmtheory as dsm
        >>> gm = dsm.datasets.digits(num_components=10, seed=0)  # doctest: +SKIP
        >>> gm.dim, gm.num_components  # doctest: +SKIP
        (64, 10)
    """
    return _dataset(
        "digits", {"scaling": "x/8 - 1"}, digits_data, num_components, seed, rank_tol, cache,
        return_info, on_fit,
    )  # fmt: skip


def image_patches(
    num_components: int = 20,
    seed: int = 0,
    size: int = 8,
    rank_tol: float | None = None,
    *,
    num_patches: int = NUM_PATCHES,
    cache: bool = True,
    return_info: bool = False,
    on_fit=None,
):
    r"""A Gaussian mixture fitted to DC-removed natural-image patches (the EPLL patch prior
    of Zoran & Weiss 2011, on scikit-image's photographs), D = ``size``².

    The data are :func:`image_patches_data` (12 000 patches of six photographs on [−1, 1],
    patch mean removed, positions drawn with a fixed seed); fitted with :data:`FIT_SETTINGS`.
    Every component has the all-ones direction on the floor (DC removed). Measured
    (size 8, K = 20, seed 0): a median of 7 (1–59) of 64 eigenvalues per component on the
    floor (docs/datasets.md gives the fit time).

    Args:
        num_components: K, 1 to ``num_patches``.
        seed: the fit's ``random_state`` (the patches do not depend on it).
        size: patch side, 2 to 8.
        rank_tol: eigenvalues ≤ ``rank_tol`` (absolute) become exactly 0; ``None`` keeps
            the floor.
        num_patches: patches fitted (default :data:`NUM_PATCHES`; fewer fit faster).
        cache: read and write the cache.
        return_info: also return the :class:`FitInfo`.
        on_fit: as in :func:`digits`.

    Returns:
        The :class:`~dsmtheory.GaussianMixture`, or ``(mixture, FitInfo)``.

    Raises:
        MissingDependencyError: scikit-learn or scikit-image is missing.
        ValueError: a bad argument, named.
    """
    size = _check_int(size, "size", 2, _MAX_PATCH_SIZE)
    num_patches = _check_int(num_patches, "num_patches", len(PATCH_IMAGES), _MAX_PATCHES)
    params = {
        "images": list(PATCH_IMAGES), "size": size, "num_patches": num_patches,
        "patch_seed": PATCH_SEED, "grey": list(_LUMA), "scaling": "2y - 1, patch mean removed",
    }  # fmt: skip
    return _dataset(
        "patches", params, lambda: image_patches_data(size, num_patches=num_patches),
        num_components, seed, rank_tol, cache, return_info, on_fit,
    )  # fmt: skip


def _dataset(name, params, load, num_components, seed, rank_tol, cache, return_info, on_fit):
    rank_tol = _check_rank_tol(rank_tol)
    seed = _check_int(seed, "seed", 0, _MAX_SEED)
    _check_int(num_components, "num_components", 1, _MAX_PATCHES)
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be True or False, got {cache!r}")
    if on_fit is not None and not callable(on_fit):
        raise TypeError(f"on_fit must be None or a function, got {on_fit!r}")
    x = load()
    k = _check_int(num_components, "num_components", 1, x.shape[0])
    data_hash = _sha256(x)
    key = {
        "format": _CACHE_FORMAT,
        "dataset": name,
        "data": params,
        "data_sha256": data_hash,
        "num_components": k,
        "seed": seed,
        "fit": dict(FIT_SETTINGS),
        "threads": 1,
        "versions": _fit_versions(),
    }
    key_text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-K{k}-seed{seed}-{digest}.npz"
    arrays = _read_cache(path, key_text) if cache else None
    cached = arrays is not None
    if arrays is None:
        if on_fit is not None:
            where = f"; cached in {path.parent}" if cache else ""
            on_fit(
                f"fitting {name} (K = {k}, seed {seed}, N = {x.shape[0]}) with scikit-learn{where}"
            )
        model, seconds = fit_sklearn(x, k, seed=seed, **FIT_SETTINGS)
        arrays = {
            "weights": np.asarray(model.weights_, dtype=np.float64),
            "means": np.asarray(model.means_, dtype=np.float64),
            "covariances": np.asarray(model.covariances_, dtype=np.float64),
            "converged": bool(model.converged_),
            "n_iter": int(model.n_iter_),
            "lower_bound": float(model.lower_bound_),
            "fit_seconds": float(seconds),
        }
        if cache:
            _write_cache(path, key_text, arrays)
    if not arrays["converged"]:
        warnings.warn(
            f"dsmtheory.datasets: the {name} fit (K = {k}, seed {seed}) did not converge in "
            f"{FIT_SETTINGS['max_iter']} EM iterations (tol {FIT_SETTINGS['tol']:g})",
            RuntimeWarning,
            stacklevel=3,
        )
    gm, floor = _from_arrays(
        FIT_SETTINGS["covariance_type"], arrays["weights"], arrays["means"],
        arrays["covariances"], FIT_SETTINGS["reg_covar"], rank_tol, True,
    )  # fmt: skip
    if not return_info:
        return gm
    info = FitInfo(
        name, x.shape[0], x.shape[1], k, seed, dict(FIT_SETTINGS), arrays["converged"],
        arrays["n_iter"], arrays["lower_bound"], arrays["fit_seconds"], cached,
        str(path) if cache else None, data_hash, floor,
    )  # fmt: skip
    return gm, info


# ---------------------------------------------------------------------------------------
# the cache
# ---------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The folder of the dataset cache: ``$DSMTHEORY_CACHE_DIR`` if set, else
    ``$XDG_CACHE_HOME/dsmtheory/datasets``, else ``~/.cache/dsmtheory/datasets`` (created
    when a fit is written, not here)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dsmtheory" / "datasets"


def _fit_versions() -> dict:
    """Versions of the libraries that can change a fit."""
    import scipy

    sklearn = _require("sklearn", "dsmtheory.datasets")
    return {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}


_ARRAY_KEYS = ("weights", "means", "covariances")
_INFO_KEYS = ("converged", "n_iter", "lower_bound", "fit_seconds")


def _read_cache(path: Path, key_text: str):
    """The cached arrays, or ``None`` when absent; a file that cannot be read or does not
    hold this key is refitted (with a warning) and overwritten."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != key_text:
                raise ValueError("its key differs")
            out = {name: np.array(f[name], dtype=np.float64) for name in _ARRAY_KEYS}
            info = json.loads(str(f["info"]))
        out.update({k: info[k] for k in _INFO_KEYS})
        return out
    except Exception as exc:  # noqa: BLE001 - any unreadable cache file is refitted
        warnings.warn(
            f"dsmtheory.datasets: ignoring the cache file {path} ({type(exc).__name__}: "
            f"{exc}); refitting",
            RuntimeWarning,
            stacklevel=4,
        )
        return None


def _write_cache(path: Path, key_text: str, arrays: dict) -> None:
    buf = io.BytesIO()
    info = json.dumps({k: arrays[k] for k in _INFO_KEYS})
    np.savez(
        buf, key=np.array(key_text), info=np.array(info), **{k: arrays[k] for k in _ARRAY_KEYS}
    )
    try:
        _io.atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:  # a read-only or full cache folder: the fit is still returned
        warnings.warn(
            f"dsmtheory.datasets: could not write the cache ({exc}); set {CACHE_ENV} to a "
            "writable folder to keep fits",
            RuntimeWarning,
            stacklevel=4,
        )


# ---------------------------------------------------------------------------------------
# names: "digits:10", "patches:20:size=6:rank_tol=1e-5"
# ---------------------------------------------------------------------------------------
_SPEC_KEYS = {
    "digits": {"num_components": int, "seed": int, "rank_tol": float},
    "patches": {
        "num_components": int, "seed": int, "size": int, "rank_tol": float, "num_patches": int,
    },
}  # fmt: skip
_SPEC_RE = re.compile(r"^(digits|patches)(:.*)?$")


def is_spec(text) -> bool:
    """Whether ``text`` names a built-in data set (``digits`` or ``patches``, alone or
    followed by ``:``), as :func:`from_spec` reads it."""
    return isinstance(text, str) and _SPEC_RE.match(text.strip()) is not None


def parse_spec(spec: str) -> tuple[str, dict]:
    """Split a data-set name ``NAME[:K][:key=value]...`` into ``(NAME, keyword arguments)``.

    ``NAME`` is ``digits`` or ``patches``; the optional first field ``K`` is
    ``num_components``; the others are ``key=value`` with keys ``num_components``, ``seed``,
    ``rank_tol`` (both) and ``size``, ``num_patches`` (patches). Examples: ``digits``,
    ``digits:50``, ``digits:10:rank_tol=1e-5``, ``patches:20:seed=1:size=6``.

    Raises:
        ValueError: one line naming the field that is wrong and the keys known.
    """
    if not isinstance(spec, str):
        raise TypeError(f"a data-set name must be a string, got {type(spec).__name__}")
    text = spec.strip()
    if not is_spec(text):
        raise ValueError(f"unknown data set {spec!r}; known: {', '.join(NAMES)}")
    name, *fields = text.split(":")
    known = _SPEC_KEYS[name]
    out: dict = {}
    for i, field in enumerate(fields):
        field = field.strip()
        if i == 0 and "=" not in field:
            key, value = "num_components", field
        elif "=" in field:
            key, _, value = (s.strip() for s in field.partition("="))
        else:
            raise ValueError(
                f"{spec!r}: field {field!r} must be key=value (keys: {', '.join(known)})"
            )
        if key not in known:
            raise ValueError(f"{spec!r}: unknown key {key!r}; known: {', '.join(known)}")
        if key in out:
            raise ValueError(f"{spec!r}: {key} given twice")
        try:
            if known[key] is int:
                if not re.fullmatch(r"[0-9]+", value):
                    raise ValueError
                out[key] = int(value)
            else:
                out[key] = float(value)
                if not math.isfinite(out[key]):
                    raise ValueError
        except ValueError:
            kind = "a non-negative integer" if known[key] is int else "a finite number"
            raise ValueError(f"{spec!r}: {key} must be {kind}, got {value!r}") from None
    return name, out


def from_spec(spec: str, *, cache: bool = True, return_info: bool = False, on_fit=None):
    """The built-in mixture a data-set name asks for (:func:`parse_spec`):
    ``from_spec("digits:50")`` is ``digits(num_components=50)``, ``"patches:20"`` is
    ``image_patches(num_components=20)``.

    Raises:
        ValueError: a malformed name or a bad value, named.
        MissingDependencyError: the optional extra is not installed.
    """
    name, kwargs = parse_spec(spec)
    factory = digits if name == "digits" else image_patches
    return factory(**kwargs, cache=cache, return_info=return_info, on_fit=on_fit)


def spec_dim(spec: str) -> int:
    """The dimension D of the mixture a data-set name asks for, without fitting it."""
    name, kwargs = parse_spec(spec)
    return 64 if name == "digits" else int(kwargs.get("size", 8)) ** 2


# ---------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------
def _check_int(value, name: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _check_rank_tol(rank_tol):
    if rank_tol is None:
        return None
    if isinstance(rank_tol, bool | np.bool_) or not isinstance(
        rank_tol, int | float | np.integer | np.floating
    ):
        raise TypeError(f"rank_tol must be None or a number >= 0, got {rank_tol!r}")
    value = float(rank_tol)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"rank_tol must be a finite number >= 0, got {rank_tol!r}")
    return value


def _check_settings(*, covariance_type, reg_covar, n_init, max_iter, tol, init_params) -> dict:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)}, got {covariance_type!r}"
        )
    inits = ("kmeans", "k-means++", "random", "random_from_data")
    if init_params not in inits:
        raise ValueError(f"init_params must be one of {', '.join(inits)}, got {init_params!r}")
    for name, value in (("reg_covar", reg_covar), ("tol", tol)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise TypeError(f"{name} must be a number, got {value!r}")
        if not (math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return {
        "covariance_type": covariance_type,
        "reg_covar": float(reg_covar),
        "n_init": _check_int(n_init, "n_init", 1, 1000),
        "max_iter": _check_int(max_iter, "max_iter", 1, 1_000_000),
        "tol": float(tol),
        "init_params": init_params,
    }


def _check_data(data) -> np.ndarray:
    from ._validation import as_float_array

    x = as_float_array(data, "data")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"data must be an (N, D) array with N >= 2 and D >= 1, got {x.shape}")
    if not np.all(np.isfinite(x)):
        bad = int(np.argmax(~np.all(np.isfinite(x), axis=1)))
        raise ValueError(f"data must be finite, but row {bad} contains NaN or inf")
    return np.ascontiguousarray(x)


def _sha256(x: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(repr(x.shape).encode())
    h.update(np.ascontiguousarray(x, dtype="<f8").tobytes())
    return h.hexdigest()
