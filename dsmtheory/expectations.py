r"""The expectation engine: the one place that averages a per-point function over a mixture.

Every expectation in dsmtheory — the mmse, the Fisher information $\mathrm{tr}\,I_t$ and
$\mathrm{tr}\,I_0$, the irreducible variance $R$, the effective dimension, $c^*$, the target
variances of every order, residual variances, the sandwich and importance-sampling
integrands — is an average $\mathbb E_{x\sim q}[f(x)]$ of a per-point function $f$ over a
Gaussian mixture $q=\sum_k\pi_kN(\mu_k,\Sigma_k)$: the noised marginal
$q=p_t=$ ``gm.noised(alpha, sigma)`` or the data $q=p_0$ itself. This module computes them,
by one of three rules, and nothing else in the package does.

Every rule works **per component, in that component's eigenbasis**:

$$\mathbb E_{x\sim q}[f(x)]=\sum_k\pi_k\,\mathbb E_{z\sim N(0,I)}\big[f(\mu_k+A_kz)\big],
\qquad A_k=U_k\,\mathrm{diag}(\sqrt{e_k}),\quad \Sigma_k=U_k\,\mathrm{diag}(e_k)\,U_k^\top,$$

so a component that is narrow in one direction, far from the others, or of tiny weight is
integrated on its own scale and can never be missed (an axis-aligned box around all of the
mixture, the old rule, returned tr I_t = 8.6e-106 instead of 5e5 for
N(0, diag(1, 1e-6)) at σ = 1e-3). Components with zero eigenvalues (rank-deficient data)
need nothing special: $A_k$ then maps onto their support.

Rules (``method=``):

* ``"adaptive"`` (D ≤ 3): globally adaptive Gauss–Kronrod cubature — the 21-point
  Gauss–Kronrod rule of QUADPACK, as a product rule in 2-D and 3-D — on
  $z\in[-9,9]^D$ (the Gaussian mass outside is below $5\cdot10^{-19}D$), every component
  and every noise level an integral of its own, refined until the summed error estimates
  $|K-G|$ are below ``rtol`` times the result (default 1e-10). Where a component is
  thinner than another in that other's coordinates (smallest scale below
  :data:`THIN_SCALE`), the other's first cells are cut at the box where the two meet, so a
  σ-wide switch of the responsibilities (lines crossing at low noise) cannot fall between
  the nodes; a thin component crossing a wide one obliquely is not boxed tightly this way
  and is left to the refinement and the sanity check. All integrals of a call
  are refined together, each round's new regions evaluated in one compiled call (scipy's
  cubature, called once per component, spends most of its time in per-call overhead:
  measured 15 s for one σ of a 256-component 1-D mixture).
* ``"gauss_hermite"`` (any D, practical for D ≤ 3): tensor Gauss–Hermite with ``num_nodes``
  nodes per axis and component (default 200 / 80 / 24 in D = 1 / 2 / 3). Pure JAX:
  jittable and vectorised over noise levels. Exact for polynomials; for the mixture
  integrands (whose responsibilities switch sharply where components meet) its accuracy
  depends on the case; it is stated per case in ``docs/reliability.md`` ("Accuracy of
  each expectation rule") as measured by ``tests/test_expectations.py``.
* ``"monte_carlo"`` (any D): ``num_samples`` draws stratified over the components (every
  component gets at least two, the rest are allocated in proportion to $\pi_k$ by
  systematic allocation), so the randomness of the component label is integrated out; the
  standard error is $\sqrt{\sum_k\pi_k^2s_k^2/n_k}$. Quantities that have a closed-form
  conditional expectation are Rao–Blackwellized by the integrand their callers pass (the
  mmse averages the closed-form $\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t)$, not
  $\|x_0-\hat x_0\|^2$). Evaluated in blocks, so memory does not grow with the sample
  count.
* ``"auto"`` (default): the cheapest rule that meets ``rtol``. In D ≤ 2 that is
  ``"adaptive"`` (Gauss–Hermite with an agreement check was measured slower: it too needs
  ``"adaptive"`` wherever the components meet, and compiles once per node count). In
  D = 3 it tries Gauss–Hermite at 8, 16 and 32 nodes per axis and accepts the first result
  that agrees with the one at half as many nodes to ``rtol``/10 (smooth integrands: high
  noise, or components far apart); the other noise levels, and every noise level in D > 3,
  go to ``"monte_carlo"``, whose result carries its standard error.

Nothing silently wrong: every ``"adaptive"`` and ``"gauss_hermite"`` result is checked
against a cheap Monte Carlo estimate (4096 stratified draws, fixed key); if the two differ
by more than six standard errors the function raises :class:`ExpectationError` naming the
rule (``"auto"`` falls back to the next rule instead, and says so in ``Estimate.rule``).
An adaptive integral that exceeds its region budget raises the same error.

Monte Carlo keys: every Monte Carlo entry point of dsmtheory takes ``key=None`` to mean
``jax.random.PRNGKey(0)`` (:data:`DEFAULT_SEED`), so results are deterministic unless a key
is passed; the key used is named in ``Estimate.rule``.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_choice, check_count, check_positive

__all__ = [
    "Estimate",
    "ExpectationError",
    "METHODS",
    "DEFAULT_RTOL",
    "DEFAULT_NUM_SAMPLES",
    "DEFAULT_SEED",
    "resolve_method",
    "resolve_key",
    "expect",
    "expect_many",
    "gauss_hermite_nodes",
    "gauss_hermite_expect",
    "monte_carlo_expect",
    "stratified_labels",
]

#: The rules, in the vocabulary used by every function of the package.
METHODS = ("auto", "adaptive", "gauss_hermite", "monte_carlo")
#: Old method names, accepted for one release with a DeprecationWarning.
DEPRECATED_METHODS = {
    "quadrature": "adaptive",
    "quadrature_check": "adaptive",
    "grid": "adaptive",
    "rao_blackwell": "monte_carlo",
    "mc": "monte_carlo",
}
#: Default relative tolerance of ``"adaptive"`` and of ``"auto"``'s acceptance test.
DEFAULT_RTOL = 1e-10
#: Default Monte Carlo sample count.
DEFAULT_NUM_SAMPLES = 20_000
#: ``key=None`` means ``jax.random.PRNGKey(DEFAULT_SEED)`` in every Monte Carlo entry point.
DEFAULT_SEED = 0
#: Half-width of the integration box in standard deviations of each component ...
BOX_HALF_WIDTH = 9.0
#: ... which ``"adaptive"`` triples while the integrand carries mass just outside the box
#: (an integrand that grows exponentially, such as an importance weight, moves the mass of a
#: component outwards), up to this half-width; beyond it, it raises.
BOX_MAX_HALF_WIDTH = 243.0
#: Draws of the Monte Carlo sanity check of the deterministic rules.
CHECK_SAMPLES = 4096
#: The sanity check fails beyond this many standard errors ...
CHECK_Z = 6.0
#: ... and this relative difference (rounding: Monte Carlo sums of a nearly constant
#: integrand are exact only to a few ulps).
CHECK_RTOL = 1e-9
#: The check samples half its draws from each component widened this many times (defensive
#: importance sampling, unbiased). A plain sample of 4096 points cannot see a region of
#: probability below ~1/4096 and its standard error does not show what it did not sample:
#: on ``bimodal_1d`` at σ = 0.15 the switch between the components, 6.9 standard deviations
#: out, carries 2e-6 of the mmse and was missed. Widened three-fold it sits 2.3 standard
#: deviations out and is sampled.
CHECK_INFLATE = 3.0
#: Gauss–Hermite nodes per axis that ``"auto"`` tries, in turn, per dimension.
AUTO_NODE_LEVELS = {3: (8, 16, 32)}
#: ``"auto"`` accepts a Gauss–Hermite result that agrees with the one at half as many nodes
#: to ``rtol`` times this factor (the agreement of two rules is an estimate of the error of
#: the coarser one; the finer one, which is kept, is then typically far more accurate).
AUTO_AGREEMENT = 0.1
#: Default nodes per axis of ``"gauss_hermite"``.
DEFAULT_NODES = {1: 200, 2: 80, 3: 24}
#: Error estimate of ``"adaptive"``: QUADPACK's (True) or the raw |K - G| (False, far more
#: pessimistic: it is the error of the embedded Gauss rule, not of the Kronrod result).
QUADPACK_ERROR = True
#: Region budget per integral of ``"adaptive"``.
MAX_REGIONS = 20_000
#: ``"adaptive"`` cuts its first cells of component k at the box where a component j meets
#: it when j's smallest scale in k's standard coordinates is below this (a feature thinner
#: than this many of k's standard deviations can fall between the 21 nodes of a cell).
THIN_SCALE = 0.2
#: Scales below this fraction of the largest are zero (a rank-deficient component's null
#: directions) when the boxes of thin components are mapped to a component's coordinates.
RANK_FLOOR = 1e-12
_CHECK_SEED = 7_919  # fixed key of the sanity check: deterministic, and not DEFAULT_SEED
_CHECK_PASSED = f"; Monte Carlo sanity check ({CHECK_SAMPLES} draws) passed"  # rule suffix
_MAX_ADAPTIVE_DIM = 3
_BLOCK_ELEMENTS = 1 << 21  # points x components x (K or D) per evaluation block (~16 MiB)


class Estimate(NamedTuple):
    r"""A computed expectation with its standard error and how it was obtained.

    The one result type of the package's expectations (mmse, Fisher information, $R$,
    $d_{\rm eff}$, $c^*$, target variances, ...).

    Attributes:
        value: the estimate: a float, or a NumPy array (a matrix, a curve over noise levels).
        stderr: its Monte Carlo standard error, same shape (zeros for the deterministic
            rules, whose accuracy is their tolerance and is described in ``rule``).
        method: ``"adaptive"``, ``"gauss_hermite"`` or ``"monte_carlo"`` (for a curve whose
            points used different rules: the rules joined by ``"+"``).
        rule: a human-readable account of the rule: nodes, regions, tolerance, estimated
            error, sample count and key, the sanity check, and any fallback.
    """

    value: Any
    stderr: Any
    method: str
    rule: str

    @property
    def matrix(self):
        """Alias of :attr:`value` for matrix-valued estimates (the Fisher information)."""
        return self.value


class ExpectationError(RuntimeError):
    """A rule could not meet its tolerance, or disagreed with its Monte Carlo sanity check.

    The message names the rule and the quantities involved.
    """


# ---------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------
def resolve_method(method: str, name: str = "method") -> str:
    """Validate a method name; map a deprecated one to its new name with a warning."""
    if not isinstance(method, str):
        raise TypeError(
            f"{name} must be a string, one of {', '.join(METHODS)}; got {type(method).__name__}"
        )
    if method in DEPRECATED_METHODS:
        new = DEPRECATED_METHODS[method]
        warnings.warn(
            f"{name}={method!r} is deprecated; use {name}={new!r}",
            DeprecationWarning,
            stacklevel=3,
        )
        return new
    check_choice(name, method, METHODS)
    return method


def resolve_key(key) -> tuple[jax.Array, str]:
    """``(key, description)``: ``None`` means ``PRNGKey(DEFAULT_SEED)`` (module docstring)."""
    if key is None:
        return jax.random.PRNGKey(DEFAULT_SEED), f"key PRNGKey({DEFAULT_SEED}) (the default)"
    try:
        arr = jnp.asarray(key)
    except TypeError as exc:
        raise TypeError(f"key must be a jax.random key, got {type(key).__name__}") from exc
    if jnp.issubdtype(arr.dtype, jax.dtypes.prng_key):
        return arr, "key given"
    if arr.dtype != jnp.uint32 or arr.shape != (2,):
        raise TypeError(
            f"key must be a jax.random key (jax.random.PRNGKey(seed) or jax.random.key(seed)), "
            f"got an array of dtype {arr.dtype} and shape {arr.shape}"
        )
    return arr, "key given"


def _check_rtol(rtol) -> float:
    if rtol is None:
        return DEFAULT_RTOL
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating, np.integer)):
        raise TypeError(f"rtol must be a real number, got {type(rtol).__name__}")
    rtol = float(rtol)
    if not (1e-15 <= rtol < 1):
        raise ValueError(f"rtol must lie in [1e-15, 1), got {rtol!r}")
    return rtol


def _check_nodes(num_nodes, dim: int) -> int:
    if num_nodes is None:
        return DEFAULT_NODES.get(dim, 8)
    n = check_count(num_nodes, "num_nodes")
    if n**dim > 4_000_000:
        raise ValueError(
            f"num_nodes = {n} gives {n}^{dim} = {n**dim:.3g} Gauss-Hermite nodes per "
            "component, over the limit of 4e6; use fewer nodes or method='monte_carlo'"
        )
    return n


def _check_samples(num_samples) -> int:
    if num_samples is None:
        return DEFAULT_NUM_SAMPLES
    return check_count(num_samples, "num_samples", 2)


# ---------------------------------------------------------------------------------------
# batched laws: a GaussianMixture pytree whose leaves carry a leading axis G
# ---------------------------------------------------------------------------------------
def _law_index(laws, g: int):
    return jax.tree_util.tree_map(lambda leaf: leaf[g], laws)


def _expand(tree):
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], tree)


def _affine(law):
    """``(loc (K, D), scale (K, D, D))`` with component k the law of ``loc_k + scale_k z``."""
    sd = jnp.sqrt(jnp.maximum(law.eigvals, 0.0))
    return law.means, law.eigvecs * sd[..., None, :]


def _block_size(num_components: int, dim: int) -> int:
    """Points per evaluation of an integrand: intermediates of ~16 MiB, and no more than the
    mixture kernels take in one block (4 MiB of (B, K, D) float64), so that they do not
    loop inside (a loop inside a loop costs compilation time, not run time)."""
    per = max(num_components, dim) * max(dim, 1) * max(num_components, 1)
    # (at least 16, the mixture kernels' own floor: 0 rows for D > 724 otherwise)
    kernel_block = max(16, (1 << 19) // (max(dim, 1) * max(num_components, dim)))
    return int(min(1 << 14, kernel_block, max(64, _BLOCK_ELEMENTS // per)))


def _sum_blocks(fn, args, x, w, block: int):
    r"""$\sum_i w_i\,f(x_i)$ over ``x (N, D)`` in blocks of ``block`` rows (a scan, so the
    intermediates of ``fn`` are those of one block). Pads with zero-weight copies of x[0]."""
    n, d = x.shape
    nb = -(-n // block)
    pad = nb * block - n
    if pad:
        x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, d))], axis=0)
        w = jnp.concatenate([w, jnp.zeros((pad,), w.dtype)])
    xb = x.reshape(nb, block, d)
    wb = w.reshape(nb, block)
    out = jax.eval_shape(lambda xx: fn(xx, *args), jax.ShapeDtypeStruct((block, d), x.dtype))

    def body(acc, inp):
        xi, wi = inp
        v = fn(xi, *args)
        return acc + jnp.tensordot(wi, v, axes=1), None

    init = jnp.zeros(out.shape[1:], out.dtype)
    acc, _ = jax.lax.scan(body, init, (xb, wb))
    return acc


# ---------------------------------------------------------------------------------------
# Gauss–Hermite
# ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _gh_nodes_cached(dim: int, n: int):
    from scipy import special  # here, not at import: it costs 0.2 s of `import dsmtheory`

    z, w = special.roots_hermitenorm(n)
    w = w / w.sum()
    keep = w > 1e-300
    z, w = z[keep], w[keep]
    grids = np.meshgrid(*([z] * dim), indexing="ij")
    wg = np.meshgrid(*([w] * dim), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=-1)
    weights = np.prod(np.stack([g.ravel() for g in wg], axis=-1), axis=-1)
    return nodes, weights


def gauss_hermite_nodes(dim: int, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Tensor-product Gauss–Hermite nodes ``(M, D)`` and weights ``(M,)`` for
    $\mathbb E_{z\sim N(0,I_D)}$ (probabilists' Hermite, from
    ``scipy.special.roots_hermitenorm``, stable for any node count; nodes whose weight
    underflows are dropped)."""
    check_count(dim, "dim")
    check_count(num_nodes, "num_nodes")
    nodes, weights = _gh_nodes_cached(int(dim), int(num_nodes))
    return nodes.copy(), weights.copy()


def gauss_hermite_expect(fn: Callable, law, args: tuple, nodes, weights) -> jax.Array:
    r"""$\sum_k\pi_k\sum_mw_m\,f(\mu_k+A_kz_m)$: the Gauss–Hermite expectation of ``fn``
    under the mixture ``law``. Pure JAX (no checks): use it inside ``jit``/``vmap``.

    Args:
        fn: ``fn(x, *args)`` mapping ``(B, D)`` points to ``(B, ...)`` values.
        law: a :class:`~dsmtheory.GaussianMixture` (unbatched).
        args: extra arguments of ``fn``.
        nodes, weights: from :func:`gauss_hermite_nodes`.
    """
    loc, scale = _affine(law)
    nodes = jnp.asarray(nodes, dtype=loc.dtype)
    weights = jnp.asarray(weights, dtype=loc.dtype)
    k, d = loc.shape
    x = loc[:, None, :] + jnp.einsum("kde,me->kmd", scale, nodes)
    w = jnp.exp(law.log_weights)[:, None] * weights[None, :]
    return _sum_blocks(fn, args, x.reshape(-1, d), w.reshape(-1), _block_size(k, d))


# ---------------------------------------------------------------------------------------
# Monte Carlo, stratified over components
# ---------------------------------------------------------------------------------------
def _labels(log_weights, n: int):
    """Stratified component labels: two per component, then ``n`` by systematic
    allocation in proportion to the weights. ``(n + 2K,)`` int32."""
    k = log_weights.shape[-1]
    cdf = jnp.cumsum(jnp.exp(log_weights))
    u = (jnp.arange(n, dtype=cdf.dtype) + 0.5) / n * cdf[-1]
    extra = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), k - 1)
    base = jnp.repeat(jnp.arange(k), 2)
    return jnp.concatenate([base, extra]).astype(jnp.int32)


def monte_carlo_expect(
    fn: Callable, law, args: tuple, key, num_samples: int, inflate: float | None = None
):
    r"""Stratified Monte Carlo estimate of $\mathbb E_{x\sim\text{law}}[f(x)]$ and its standard
    error. Pure JAX (no checks; ``num_samples`` static): use it inside ``jit``/``vmap``.

    ``num_samples + 2K`` points: two per component, the rest allocated systematically in
    proportion to $\pi_k$; estimate $\sum_k\pi_k\bar f_k$, variance
    $\sum_k\pi_k^2s_k^2/n_k$, per-component moments merged block by block (Chan et al.),
    so nothing cancels and memory is one block's.

    With ``inflate = c > 1`` every other draw is taken from the component widened c-fold
    ($z\to cz$) and weighted by $\phi(z)/(\tfrac12\phi(z)+\tfrac12c^{-D}\phi(z/c))\le2$
    (a defensive importance-sampling mixture): the estimate stays unbiased and the tails of
    each component, where mixture integrands switch, are sampled c times further out.

    Returns:
        ``(value, stderr)``.
    """
    # component k is the law of law.component_points(k, z), z ~ N(0, I_m): m = D for the
    # dense kind, r + D for the low-rank kind (whose D x D scale is never formed)
    dtype = law.means.dtype
    k, d = law.means.shape
    m = law.latent_dim
    labels = _labels(law.log_weights, num_samples)
    total = labels.shape[0]
    z = jax.random.normal(key, (total, m), dtype=dtype)
    if inflate is not None:
        c = float(inflate)
        wide = (jnp.arange(total) % 2) == 1
        z = jnp.where(wide[:, None], c * z, z)
        sq = jnp.sum(z * z, axis=-1)
        # phi(z) / (phi(z)/2 + c^-m phi(z/c)/2), in logs (m = latent_dim)
        log_ratio = jnp.logaddexp(0.0, -m * math.log(c) + 0.5 * sq * (1.0 - 1.0 / c**2))
        iw = jnp.exp(math.log(2.0) - log_ratio)
    else:
        iw = jnp.ones((total,), dtype)
    block = _block_size(k, d)
    nb = -(-total // block)
    pad = nb * block - total
    valid = jnp.concatenate([jnp.ones(total, dtype), jnp.zeros(pad, dtype)])
    labels = jnp.concatenate([labels, jnp.zeros(pad, jnp.int32)])
    z = jnp.concatenate([z, jnp.zeros((pad, m), z.dtype)])
    iw = jnp.concatenate([iw, jnp.zeros(pad, iw.dtype)])
    out = jax.eval_shape(lambda xx: fn(xx, *args), jax.ShapeDtypeStruct((block, d), dtype))
    tail = out.shape[1:]

    def body(carry, inp):
        cnt, mean, m2 = carry
        zi, li, vi, wi = inp
        x = component_points(law, li, zi)
        f = wi[:, None] * fn(x, *args).reshape(block, -1)
        onehot = jax.nn.one_hot(li, k, dtype=f.dtype) * vi[:, None]  # (B, K)
        c_b = onehot.sum(0)  # (K,)
        s_b = onehot.T @ f  # (K, P)
        mean_b = s_b / jnp.maximum(c_b, 1.0)[:, None]
        dev = f[:, None, :] - mean_b[None]  # (B, K, P)
        m2_b = jnp.einsum("bk,bkp->kp", onehot, dev * dev)
        n_new = cnt + c_b
        delta = mean_b - mean
        frac = jnp.where(n_new > 0, c_b / jnp.maximum(n_new, 1.0), 0.0)[:, None]
        mean = mean + delta * frac
        m2 = m2 + m2_b + delta * delta * (cnt * frac[:, 0])[:, None]
        return (n_new, mean, m2), None

    p = int(np.prod(tail)) if tail else 1
    init = (jnp.zeros(k, dtype), jnp.zeros((k, p), dtype), jnp.zeros((k, p), dtype))
    inputs = (
        z.reshape(nb, block, m),
        labels.reshape(nb, block),
        valid.reshape(nb, block),
        iw.reshape(nb, block),
    )
    (cnt, mean, m2), _ = jax.lax.scan(body, init, inputs)
    pi = jnp.exp(law.log_weights)
    value = pi @ mean
    var_k = m2 / jnp.maximum(cnt - 1.0, 1.0)[:, None]
    stderr = jnp.sqrt(jnp.sum((pi**2 / cnt)[:, None] * var_k, axis=0))
    return value.reshape(tail), stderr.reshape(tail)


# ---------------------------------------------------------------------------------------
# adaptive Gauss–Kronrod cubature, batched over integrals
# ---------------------------------------------------------------------------------------
# The 21-point Gauss–Kronrod rule on [-1, 1] (QUADPACK qk21; Piessens et al. 1983): nodes
# x_j >= 0 with Kronrod weights, and the weights of the embedded 10-point Gauss rule, whose
# nodes are the odd-indexed x_j. Tested for exactness in tests/test_expectations.py.
_XGK = np.array([
    0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
    0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
    0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
    0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
    0.294392862701460198131126603103866, 0.148874338981631210884826001129720,
    0.0,
])  # fmt: skip
_WGK = np.array([
    0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
    0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
    0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
    0.123491976262065851077208980865910, 0.134709217311473325928054001771707,
    0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
    0.149445554002916905664936468389821,
])  # fmt: skip
_WG = np.array([
    0.066671344308688137593568809893332, 0.149451349150580593145776339657697,
    0.219086362515982043995534934228163, 0.269266719309996355091226921569469,
    0.295524224714752870173892994651338,
])  # fmt: skip


def gauss_kronrod_21() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(nodes, kronrod_weights, gauss_weights)`` of the 21-point rule on [-1, 1]; the Gauss
    weights are zero at the 11 Kronrod-only nodes."""
    nodes = np.concatenate([-_XGK[:-1], _XGK[::-1]])
    wk = np.concatenate([_WGK[:-1], _WGK[::-1]])
    wg_half = np.zeros(11)
    wg_half[1:10:2] = _WG
    wg = np.concatenate([wg_half[:-1], wg_half[::-1]])
    return nodes, wk, wg


@functools.lru_cache(maxsize=8)
def _product_rule(dim: int):
    """Product Gauss–Kronrod 21 rule on [-1, 1]^D: nodes ``(21^D, D)``, Kronrod weights,
    Gauss weights, and per axis j the weights with Gauss along j and Kronrod along the others
    ``(D, 21^D)`` (their difference from the Kronrod result estimates the error along j)."""
    x, wk, wg = gauss_kronrod_21()
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=-1)

    def product(per_axis):
        mesh = np.meshgrid(*per_axis, indexing="ij")
        return np.prod(np.stack([m.ravel() for m in mesh], -1), -1)

    wk_d = product([wk] * dim)
    wg_d = product([wg] * dim)
    w_axis = np.stack([product([wg if i == j else wk for i in range(dim)]) for j in range(dim)])
    return nodes, wk_d, wg_d, w_axis


_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def component_points(law, comp, z):
    """Points ``x = μ_k + A_k z`` of components ``comp (B,)`` for standard normal
    ``z (B, law.latent_dim)``: the one place where the engine maps its standard coordinates
    to a law (the law's own :meth:`~dsmtheory.GaussianMixture.component_points`)."""
    return law.component_points(comp, z)


def _make_evaluator(fn: Callable):
    r"""Jitted ``(law, args, comp (B,), z (B, D)) -> (B, P)``: $f(\mu_k+A_kz)$ flattened. Every
    rule but Gauss–Hermite evaluates ``fn`` through this one compilation per integrand and
    mixture shape (batches are padded to one size)."""

    @jax.jit
    def evaluate(law, args, comp, z):
        f = fn(component_points(law, comp, z), *args)
        return f.reshape(f.shape[0], -1)

    return evaluate


_EVALUATORS: dict = {}


def _evaluator_for(fn):
    return _cached(_EVALUATORS, fn, lambda: _make_evaluator(fn))


def _evaluate(evaluator, law, args, comp, z, batch: int) -> np.ndarray:
    """``fn`` at the points of ``comp``, ``z`` in padded batches of ``batch`` rows."""
    n, d = z.shape
    out = []
    for start in range(0, n, batch):
        zc, cc = z[start : start + batch], comp[start : start + batch]
        m = zc.shape[0]
        zp = np.zeros((batch, d))
        zp[:m] = zc
        cp = np.zeros(batch, np.int32)
        cp[:m] = cc
        out.append(np.asarray(evaluator(law, args, jnp.asarray(cp), jnp.asarray(zp)))[:m])
    return np.concatenate(out, axis=0)


def _bucket(n: int, max_batch: int) -> int:
    """Padded batch size: always ``max_batch`` — one compilation per integrand and mixture
    shape (a second, smaller size was measured to cost more in compilation, ~1.5 s, than it
    saves in run time)."""
    return max_batch


def _evaluate_regions(integrand, law, args, comp, lo, hi, rule, max_batch):
    """Apply the product Gauss–Kronrod rule to regions ``[lo, hi]`` of components ``comp``:
    ``(kronrod (R, P), error (R,), axis (R,))``: the error estimate (∞-norm over outputs) and
    the axis along which the error is largest (where the region is split)."""
    nodes, wk, wg, w_axis = rule
    r, d = lo.shape
    m = nodes.shape[0]
    c = 0.5 * (lo + hi)
    h = 0.5 * (hi - lo)
    vol = np.prod(h, axis=-1)
    pts = (c[:, None, :] + h[:, None, :] * nodes[None]).reshape(-1, d)
    cp = np.repeat(comp, m)
    f = _evaluate(integrand, law, args, cp, pts, max_batch)
    logphi = -0.5 * np.sum(pts * pts, axis=-1) - d * _LOG_SQRT_2PI
    wt = np.exp(np.asarray(law.log_weights)[cp] + logphi)
    v = (wt[:, None] * f).reshape(r, m, -1)
    k_est = vol[:, None] * np.einsum("m,rmp->rp", wk, v)
    g_est = vol[:, None] * np.einsum("m,rmp->rp", wg, v)
    raw = np.abs(k_est - g_est)
    if d == 1:
        axis = np.zeros(r, dtype=int)
    else:
        per_axis = np.abs(vol[:, None, None] * np.einsum("jm,rmp->rjp", w_axis, v) - k_est[:, None])
        axis = np.argmax(per_axis.max(axis=-1), axis=-1)
    if not QUADPACK_ERROR:
        return k_est, np.max(raw, axis=-1), axis
    # QUADPACK's error estimate (qk21): with resasc = ∫|f - mean f| by the Kronrod rule,
    # err = resasc * min(1, (200 |K - G| / resasc)^1.5), floored at 50 eps |K|.
    mean = np.einsum("m,rmp->rp", wk, v) / wk.sum()
    resasc = vol[:, None] * np.einsum("m,rmp->rp", wk, np.abs(v - mean[:, None, :]))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(
            (resasc > 0) & (raw > 0), resasc * np.minimum(1.0, (200.0 * raw / resasc) ** 1.5), raw
        )
    resabs = vol[:, None] * np.einsum("m,rmp->rp", wk, np.abs(v))
    err = np.maximum(scaled, 50.0 * np.finfo(float).eps * resabs)
    return k_est, np.max(err, axis=-1), axis


def _outer_blocks(d: int, half: float):
    """The ``3^D - 1`` cubes of side ``2 half`` that tile ``[-3 half, 3 half]^D`` outside
    ``[-half, half]^D`` (the box grown threefold: the mass just outside it is what matters)."""
    edges = np.array([-3.0, -1.0, 1.0, 3.0]) * half
    grid = np.stack(np.meshgrid(*([np.arange(3)] * d), indexing="ij"), -1).reshape(-1, d)
    grid = grid[np.any(grid != 1, axis=1)]
    return edges[grid], edges[grid + 1]


def _gauss_mass(integrand, law, args, comp, lo, hi, max_batch):
    """The 10-point Gauss product estimate of the integral over each region, summed:
    ``(P,)``. A cheap look at where the integrand should be negligible."""
    x, _, wg = gauss_kronrod_21()
    keep = wg > 0
    gx, gw = x[keep], wg[keep]
    d = lo.shape[1]
    nodes = np.stack([g.ravel() for g in np.meshgrid(*([gx] * d), indexing="ij")], -1)
    w = np.prod(np.stack([g.ravel() for g in np.meshgrid(*([gw] * d), indexing="ij")], -1), -1)
    rule = (nodes, w, w, np.zeros((d, w.size)))
    k_est, _, _ = _evaluate_regions(integrand, law, args, comp, lo, hi, rule, max_batch)
    return k_est.sum(axis=0)


def _split(lo, hi, axis):
    """Bisect each region along its ``axis``: two children per region."""
    r = lo.shape[0]
    rows = np.arange(r)
    mid = 0.5 * (lo[rows, axis] + hi[rows, axis])
    hi_left = hi.copy()
    hi_left[rows, axis] = mid
    lo_right = lo.copy()
    lo_right[rows, axis] = mid
    return np.concatenate([lo, lo_right]), np.concatenate([hi_left, hi])


def _overlap_boxes(law, half: float):
    r"""Where a component narrower than another, in that other's standard coordinates, meets
    it: ``(owner (M,), lo (M, D), hi (M, D))`` in the owner's coordinates.

    Component $j$'s box $\{\mu_j+A_jw:\|w\|_\infty\le h\}$ is, in component $k$'s
    coordinates $z=A_k^{-1}(x-\mu_k)$, the parallelotope $c+Mw$ with
    $c=A_k^{-1}(\mu_j-\mu_k)$, $M=A_k^{-1}A_j$. Where $M$'s smallest singular value is below
    :data:`THIN_SCALE`, the integrand on $k$'s box switches (responsibilities) on a scale finer
    than the cubature's nodes and can fall between them (two crossing lines at σ = 1e-3 meet
    in a σ-wide region, 1e-3 of the box along each line). The bounding box of the
    parallelotope within $[-h, h]^D$ (exact, by enumerating the vertices of the polytope
    $\{w:\|w\|_\infty\le h,\ \|c+Mw\|_\infty\le h\}$) is returned, so that the first
    cells are cut at its faces and the rule sees it."""
    means = np.asarray(law.means, dtype=np.float64)
    e = np.maximum(np.asarray(law.eigvals, dtype=np.float64), 0.0)
    u = np.asarray(law.eigvecs, dtype=np.float64)
    k, d = means.shape
    if k < 2:
        return np.zeros(0, int), np.zeros((0, d)), np.zeros((0, d))
    sd = np.sqrt(e)
    scale = u * sd[:, None, :]  # A_k (K, D, D)
    floor = RANK_FLOOR * max(float(sd.max()), 1e-300)
    inv_sd = np.where(sd > floor, 1.0 / np.where(sd > floor, sd, 1.0), 0.0)
    inv = inv_sd[:, :, None] * np.swapaxes(u, -1, -2)  # A_k^{-1} on the support (K, D, D)
    kk, jj = np.nonzero(~np.eye(k, dtype=bool))
    m = np.einsum("pab,pbc->pac", inv[kk], scale[jj])
    c = np.einsum("pab,pb->pa", inv[kk], means[jj] - means[kk])
    smin = np.linalg.svd(m, compute_uv=False)[:, -1]
    # only pairs that are thin and not obviously apart (c within h(1 + row sums of |M|))
    reach = half * (1.0 + np.abs(m).sum(-1))
    sel = (smin < THIN_SCALE) & np.all(np.abs(c) <= reach, axis=1)
    if not np.any(sel):
        return np.zeros(0, int), np.zeros((0, d)), np.zeros((0, d))
    kk, m, c = kk[sel], m[sel], c[sel]
    p = kk.size
    # constraints G w <= b: w_i <= h, -w_i <= h, (c + M w)_i <= h, -(c + M w)_i <= h
    eye = np.eye(d)
    g = np.concatenate(
        [np.broadcast_to(eye, (p, d, d)), np.broadcast_to(-eye, (p, d, d)), m, -m], axis=1
    )
    b = np.concatenate([np.full((p, 2 * d), half), half - c, half + c], axis=1)
    combos = np.array(list(itertools.combinations(range(4 * d), d)))
    gs = g[:, combos]  # (P, C, D, D)
    bs = b[:, combos]  # (P, C, D)
    det = np.linalg.det(gs)
    ok = np.abs(det) > 1e-12 * np.maximum(np.abs(gs).max(axis=(-1, -2)) ** d, 1e-300)
    safe = np.where(ok[..., None, None], gs, np.eye(d))
    w = np.linalg.solve(safe, bs[..., None])[..., 0]  # (P, C, D)
    slack = np.einsum("pnd,pcd->pcn", g, w) - b[:, None, :]
    feasible = ok & np.all(slack <= 1e-9 * half, axis=-1)
    z = c[:, None, :] + np.einsum("pab,pcb->pca", m, w)
    big = np.where(feasible[..., None], z, np.inf)
    small = np.where(feasible[..., None], z, -np.inf)
    lo = np.clip(big.min(axis=1), -half, half)
    hi = np.clip(small.max(axis=1), -half, half)
    keep = np.any(feasible, axis=1) & np.all(hi > lo, axis=1)
    return kk[keep], lo[keep], hi[keep]


def _split_at_thin_overlaps(law, lo, hi, comp):
    """Cut the first cells ``(lo, hi)`` of components ``comp`` at the faces of the boxes of
    :func:`_overlap_boxes` (each cell that meets a box into up to 3^D pieces)."""
    owner, blo, bhi = _overlap_boxes(law, BOX_HALF_WIDTH)
    for o, a, b in zip(owner, blo, bhi, strict=True):
        hit = (comp == o) & np.all(lo < b, axis=1) & np.all(hi > a, axis=1)
        if not np.any(hit):
            continue
        clo, chi = lo[hit], hi[hit]
        for i in range(lo.shape[1]):
            for cut in (a[i], b[i]):
                inside = (clo[:, i] < cut) & (chi[:, i] > cut)
                if not np.any(inside):
                    continue
                left_hi = chi[inside].copy()
                left_hi[:, i] = cut
                right_lo = clo[inside].copy()
                right_lo[:, i] = cut
                clo = np.concatenate([clo[~inside], clo[inside], right_lo])
                chi = np.concatenate([chi[~inside], left_hi, chi[inside]])
        lo = np.concatenate([lo[~hit], clo])
        hi = np.concatenate([hi[~hit], chi])
        comp = np.concatenate([comp[~hit], np.full(clo.shape[0], o)])
    return lo, hi, comp


def _adaptive_one(fn, law, args, rtol: float, atol: float, max_regions: int):
    """Adaptive cubature of ``E_law[fn]`` (one law). Returns ``(value (P,), err, regions,
    evaluations)``; raises ExpectationError past the region budget."""
    integrand = _evaluator_for(fn)
    k, d = np.shape(law.means)
    if d > _MAX_ADAPTIVE_DIM:
        raise ValueError(
            f"method='adaptive' needs dimension D <= {_MAX_ADAPTIVE_DIM}, got D = {d}; use "
            "method='monte_carlo' (or 'auto') in higher dimensions"
        )
    rule = _product_rule(d)
    nodes = rule[0]
    max_batch = max(nodes.shape[0], _block_size(k, d))
    cells = {1: 6, 2: 3, 3: 2}[d]
    edges = np.linspace(-BOX_HALF_WIDTH, BOX_HALF_WIDTH, cells + 1)
    grid = np.stack(np.meshgrid(*([np.arange(cells)] * d), indexing="ij"), -1).reshape(-1, d)
    lo0 = edges[grid]
    hi0 = edges[grid + 1]
    comp = np.repeat(np.arange(k), lo0.shape[0])
    lo = np.tile(lo0, (k, 1))
    hi = np.tile(hi0, (k, 1))
    lo, hi, comp = _split_at_thin_overlaps(law, lo, hi, comp)
    est, err, axis = _evaluate_regions(integrand, law, args, comp, lo, hi, rule, max_batch)
    evals = lo.shape[0] * nodes.shape[0]
    half = BOX_HALF_WIDTH
    while True:
        total = est.sum(axis=0)
        tol = max(atol, rtol * float(np.max(np.abs(total))))
        tot_err = float(err.sum())
        if tot_err <= tol:
            # Is the box wide enough? Integrands that grow exponentially (importance weights
            # p_t / p_B) shift the mass of a component outwards. Estimate the mass in the
            # box of twice the width, outside this one, with the Gauss product rule on one
            # cell per block; where it matters, add those cells and continue.
            out_lo, out_hi = _outer_blocks(d, half)
            ocomp = np.repeat(np.arange(k), out_lo.shape[0])
            olo, ohi = np.tile(out_lo, (k, 1)), np.tile(out_hi, (k, 1))
            outer = _gauss_mass(integrand, law, args, ocomp, olo, ohi, max_batch)
            evals += olo.shape[0] * 10**d
            if float(np.max(np.abs(outer))) <= 0.1 * tol:
                return total, tot_err, lo.shape[0], evals
            if half >= BOX_MAX_HALF_WIDTH:
                raise ExpectationError(
                    f"adaptive Gauss-Kronrod cubature: the integrand does not decay within "
                    f"{half:g} standard deviations of the components (mass {np.max(outer):.3g} "
                    f"outside against a tolerance {tol:.3g}); use method='monte_carlo'"
                )
            cest, cerr, caxis = _evaluate_regions(
                integrand, law, args, ocomp, olo, ohi, rule, max_batch
            )
            evals += olo.shape[0] * nodes.shape[0]
            lo, hi = np.concatenate([lo, olo]), np.concatenate([hi, ohi])
            comp = np.concatenate([comp, ocomp])
            est, err = np.concatenate([est, cest]), np.concatenate([err, cerr])
            axis = np.concatenate([axis, caxis])
            half *= 3.0
            continue
        if lo.shape[0] >= max_regions * k:
            raise ExpectationError(
                f"adaptive Gauss-Kronrod cubature did not reach rtol {rtol:g} within "
                f"{max_regions} regions per component (estimated error {tot_err:.3g} against "
                f"a tolerance {tol:.3g}); use method='monte_carlo' or a larger rtol"
            )
        order = np.argsort(-err)
        need = tot_err - 0.5 * tol
        cum = np.cumsum(err[order])
        count = int(np.searchsorted(cum, need) + 1)
        count = max(1, min(count, order.size, max(64, order.size // 4)))
        chosen = order[:count]
        keep = np.ones(lo.shape[0], bool)
        keep[chosen] = False
        clo, chi = _split(lo[chosen], hi[chosen], axis[chosen])
        ccomp = np.tile(comp[chosen], 2)
        cest, cerr, caxis = _evaluate_regions(
            integrand, law, args, ccomp, clo, chi, rule, max_batch
        )
        evals += clo.shape[0] * nodes.shape[0]
        lo = np.concatenate([lo[keep], clo])
        hi = np.concatenate([hi[keep], chi])
        comp = np.concatenate([comp[keep], ccomp])
        est = np.concatenate([est[keep], cest])
        err = np.concatenate([err[keep], cerr])
        axis = np.concatenate([axis[keep], caxis])


# ---------------------------------------------------------------------------------------
# jitted drivers of the pure rules, batched over laws
# ---------------------------------------------------------------------------------------
_GH_DRIVERS: dict = {}
_MC_DRIVERS: dict = {}
_LAW_CHUNK_ELEMENTS = 1 << 24  # intermediates of one chunk of laws (~128 MiB of float64)


def _law_chunk(laws, points: int) -> int:
    """Laws per compiled call: a power of two keeping the vmapped intermediates bounded."""
    k = int(np.shape(laws.log_weights)[-1])
    d = int(np.shape(laws.means)[-1])
    rows = min(points, _block_size(k, d))
    per_law = rows * max(k, d) * max(d, 1) * max(k, 1)
    size = max(1, min(64, _LAW_CHUNK_ELEMENTS // max(per_law, 1)))
    return 1 << (size.bit_length() - 1)


def _chunked(drive, laws, args, rest, points: int):
    """Call ``drive(laws, args, *rest)`` on chunks of a fixed number of laws (the last one
    padded by repeating its last law): one compilation per chunk size whatever G is."""
    g = _num_laws(laws)
    limit = _law_chunk(laws, points)
    chunk = 1
    while chunk < min(g, limit):  # 1, 4, 16, 64: few compilations, at most 4x padding
        chunk *= 4
    chunk = min(chunk, limit)
    outs = []
    for start in range(0, g, chunk):
        idx = np.arange(start, min(g, start + chunk))
        if idx.size < chunk:
            idx = np.concatenate([idx, np.full(chunk - idx.size, idx[-1])])
        sub_laws, sub_args = _subset((laws, args), idx)
        out = drive(sub_laws, sub_args, *rest)
        keep = min(chunk, g - start)
        outs.append(jax.tree_util.tree_map(lambda o, keep=keep: np.asarray(o)[:keep], out))
    return jax.tree_util.tree_map(lambda *o: np.concatenate(o, axis=0), *outs)


def _cached(table: dict, key, build):
    try:
        return table[key]
    except KeyError:
        out = table[key] = build()
        return out
    except TypeError:  # unhashable callable: no cache
        return build()


def _gh_driver(fn):
    """``run(laws, args, shared, nodes, weights) -> (G, ...)`` for Gauss–Hermite."""

    def build():
        @jax.jit
        def drive(laws, args, shared, nodes, weights):
            return jax.vmap(
                lambda law, a: gauss_hermite_expect(fn, law, (*a, *shared), nodes, weights)
            )(laws, args)

        def run(laws, args, shared, nodes, weights):
            return _chunked(drive, laws, args, (shared, nodes, weights), nodes.shape[0])

        return run

    return _cached(_GH_DRIVERS, fn, build)


_NORMALS = jax.jit(lambda key, shape_like: jax.random.normal(key, shape_like.shape))


def stratified_labels(weights, num_samples: int) -> np.ndarray:
    """Component labels of a stratified Monte Carlo sample: two per component, then
    ``num_samples`` allocated systematically in proportion to ``weights`` (``(K,)``, summing
    to one). ``(num_samples + 2K,)`` int32, sorted by component within each part."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    k = w.size
    cdf = np.cumsum(w)
    u = (np.arange(int(num_samples)) + 0.5) / max(int(num_samples), 1) * cdf[-1]
    extra = np.minimum(np.searchsorted(cdf, u, side="right"), k - 1)
    return np.concatenate([np.repeat(np.arange(k), 2), extra]).astype(np.int32)


def _mc_draws(log_weights, dim: int, key, num_samples: int, inflate):
    """Stratified labels (two per component, then systematic allocation), standard normal
    draws and their importance weights (1, or the defensive mixture's with ``inflate``)."""
    w = np.exp(np.asarray(log_weights, dtype=np.float64))
    k = w.size
    cdf = np.cumsum(w)
    u = (np.arange(num_samples) + 0.5) / num_samples * cdf[-1]
    extra = np.minimum(np.searchsorted(cdf, u, side="right"), k - 1)
    labels = np.concatenate([np.repeat(np.arange(k), 2), extra]).astype(np.int32)
    z = np.asarray(_NORMALS(key, jnp.zeros((labels.size, dim))), dtype=np.float64)
    if inflate is None:
        return labels, z, np.ones(labels.size)
    c = float(inflate)
    wide = (np.arange(labels.size) % 2) == 1
    z = np.where(wide[:, None], c * z, z)
    sq = np.sum(z * z, axis=-1)
    log_ratio = np.logaddexp(0.0, -dim * math.log(c) + 0.5 * sq * (1.0 - 1.0 / c**2))
    return labels, z, np.exp(math.log(2.0) - log_ratio)


def _mc_one(evaluator, law, args, labels, z, iw, batch: int):
    r"""``(value (P,), stderr (P,))``: per-component means and variances (Chan's merge, block
    by block in float64), combined as $\sum_k\pi_k\bar f_k$ and $\sum_k\pi_k^2s_k^2/n_k$."""
    k = int(np.shape(law.log_weights)[-1])
    cnt = np.zeros(k)
    mean = None
    m2 = None
    for start in range(0, labels.size, batch):
        sl = slice(start, start + batch)
        f = _evaluate(evaluator, law, args, labels[sl], z[sl], batch) * iw[sl, None]
        lab = labels[sl]
        if mean is None:
            mean = np.zeros((k, f.shape[1]))
            m2 = np.zeros((k, f.shape[1]))
        onehot = np.zeros((lab.size, k))
        onehot[np.arange(lab.size), lab] = 1.0
        c_b = onehot.sum(axis=0)
        mean_b = (onehot.T @ f) / np.maximum(c_b, 1.0)[:, None]
        dev = f - mean_b[lab]
        m2_b = onehot.T @ (dev * dev)
        n_new = cnt + c_b
        delta = mean_b - mean
        frac = np.where(n_new > 0, c_b / np.maximum(n_new, 1.0), 0.0)[:, None]
        mean = mean + delta * frac
        m2 = m2 + m2_b + delta * delta * (cnt[:, None] * frac)
        cnt = n_new
    pi = np.exp(np.asarray(law.log_weights, dtype=np.float64))
    var_k = m2 / np.maximum(cnt - 1.0, 1.0)[:, None]
    return pi @ mean, np.sqrt(np.sum((pi**2 / cnt)[:, None] * var_k, axis=0))


def _monte_carlo_many(fn, laws, args, shared, key, num_samples: int, inflate=None):
    """Monte Carlo for each law (the same draws for all: common random numbers)."""
    evaluator = _evaluator_for(fn)
    g = _num_laws(laws)
    k = int(np.shape(laws.log_weights)[-1])
    d = int(np.shape(laws.means)[-1])
    batch = _block_size(k, d)
    first = _law_index(laws, 0)
    # draws in the law's latent coordinates (D for the dense kind, r + D for the low-rank)
    labels, z, iw = _mc_draws(first.log_weights, first.latent_dim, key, num_samples, inflate)
    vals, ses = [], []
    for i in range(g):
        a = (*_law_index(args, i), *shared)
        v, e = _mc_one(evaluator, _law_index(laws, i), a, labels, z, iw, batch)
        vals.append(v)
        ses.append(e)
    return np.stack(vals), np.stack(ses)


# ---------------------------------------------------------------------------------------
# the public entry points
# ---------------------------------------------------------------------------------------
def _num_laws(laws) -> int:
    return int(np.shape(laws.log_weights)[0])


def _out_shape(fn, laws, args, shared) -> tuple:
    """The per-point output shape of ``fn`` (without evaluating it)."""
    law, a = _law_index(laws, 0), _law_index(args, 0)
    d = int(np.shape(law.means)[-1])
    out = jax.eval_shape(lambda x: fn(x, *a, *shared), jax.ShapeDtypeStruct((2, d), jnp.float64))
    return tuple(out.shape[1:])


def _sanity(fn, laws, args, shared, values, rule_name, *, raise_error: bool, atol: float = 0.0):
    """Compare deterministic ``values (G, ...)`` with a 4096-draw Monte Carlo estimate.
    Returns the boolean mask of laws that pass (raises if ``raise_error``)."""
    mc, se = _monte_carlo_many(
        fn, laws, args, shared, jax.random.PRNGKey(_CHECK_SEED), CHECK_SAMPLES, CHECK_INFLATE
    )
    vals = np.asarray(values)
    g = vals.shape[0]
    mc, se = mc.reshape(vals.shape), se.reshape(vals.shape)
    diff = np.abs(vals - mc).reshape(g, -1)
    scale = np.max(np.abs(vals).reshape(g, -1), axis=1, keepdims=True)
    allowed = CHECK_Z * se.reshape(g, -1) + CHECK_RTOL * scale + atol + 1e-300
    ok = np.all(diff <= allowed, axis=1) & np.all(np.isfinite(vals.reshape(g, -1)), axis=1)
    if raise_error and not np.all(ok):
        i = int(np.argmin(ok))
        j = int(np.argmax(diff[i] / allowed[i]))
        raise ExpectationError(
            f"{rule_name} disagrees with its Monte Carlo sanity check ({CHECK_SAMPLES} draws): "
            f"{vals.reshape(g, -1)[i, j]:.10g} vs {mc.reshape(g, -1)[i, j]:.10g} ± "
            f"{se.reshape(g, -1)[i, j]:.3g} (more than {CHECK_Z:g} standard errors and "
            f"{CHECK_RTOL:g} relative) at law "
            f"{i}; the result would be wrong, so it is not returned"
        )
    return ok


def expect_many(
    fn: Callable,
    laws,
    args: tuple = (),
    shared: tuple = (),
    *,
    method: str = "auto",
    rtol: float | None = None,
    atol: float = 0.0,
    key=None,
    num_samples: int | None = None,
    num_nodes: int | None = None,
    sanity_check: bool = True,
) -> Estimate:
    r"""$\mathbb E_{x\sim q_g}[f(x,\text{args}_g)]$ for a batch of laws $q_1,\dots,q_G$.

    Args:
        fn: ``fn(x, *args)``, a JAX function mapping ``(B, D)`` points to ``(B, ...)``
            values. Pass a module-level function (compilations are cached per function).
        laws: a :class:`~dsmtheory.GaussianMixture` whose leaves carry a leading batch axis
            ``G`` (e.g. ``jax.vmap(gm.noised)(alphas, sigmas)``); all share K and D.
        args: per-law arguments of ``fn``, each with the leading axis ``G``.
        shared: further arguments of ``fn``, the same for every law (after ``args``).
        method: ``"auto"``, ``"adaptive"``, ``"gauss_hermite"`` or ``"monte_carlo"``.
        rtol: relative tolerance of ``"adaptive"`` and of ``"auto"`` (default 1e-10),
            measured in the ∞-norm of each result.
        atol: absolute tolerance floor of ``"adaptive"`` and of the sanity check (for results
            that may be zero, such as a misfit that vanishes to rounding).
        key: ``jax.random`` key of ``"monte_carlo"`` (``None``: ``PRNGKey(0)``); the same
            draws are used for every law (common random numbers: smooth curves).
        num_samples: Monte Carlo draws per law (default 20 000; plus two per component).
        num_nodes: Gauss–Hermite nodes per axis (default 200 / 80 / 24 in D = 1 / 2 / 3).
        sanity_check: compare deterministic results with a cheap Monte Carlo estimate and
            raise :class:`ExpectationError` on disagreement (default True). Turn it off only
            for integrands whose Monte Carlo variance is infinite.

    Returns:
        :class:`Estimate` with ``value`` and ``stderr`` of shape ``(G, ...)``.

    Raises:
        ValueError: bad options, or ``"adaptive"`` in D > 3.
        ExpectationError: a rule missed its tolerance or failed its sanity check.
    """
    method = resolve_method(method)
    rtol = _check_rtol(rtol)
    check_positive(atol, "atol", allow_zero=True)
    d = int(np.shape(laws.means)[-1])
    if method == "gauss_hermite":
        n = _check_nodes(num_nodes, d)
        nodes, weights = _gh_nodes_cached(d, n)
        vals = np.asarray(_gh_driver(fn)(laws, args, shared, nodes, weights))
        rule = (
            f"Gauss-Hermite, {n} nodes per axis per component in its eigenbasis "
            f"({nodes.shape[0]} x K points)"
        )
        if sanity_check:
            _sanity(fn, laws, args, shared, vals, "gauss_hermite", raise_error=True, atol=atol)
            rule += _CHECK_PASSED
        return Estimate(vals, np.zeros_like(vals), "gauss_hermite", rule)
    if method == "monte_carlo":
        n = _check_samples(num_samples)
        rng, kdesc = resolve_key(key)
        vals, se = _monte_carlo_many(fn, laws, args, shared, rng, n)
        out_shape = _out_shape(fn, laws, args, shared)
        vals, se = vals.reshape((-1, *out_shape)), se.reshape((-1, *out_shape))
        k = int(np.shape(laws.log_weights)[-1])
        rule = (
            f"Monte Carlo, {n + 2 * k} draws stratified over {k} components (two each, the "
            f"rest in proportion to the weights), {kdesc}"
        )
        return Estimate(np.asarray(vals), np.asarray(se), "monte_carlo", rule)
    if method == "adaptive":
        return _adaptive_many(fn, laws, args, shared, rtol, atol, sanity_check, raise_check=True)
    return _auto(fn, laws, args, shared, rtol, atol, key, num_samples, sanity_check)


def _adaptive_many(fn, laws, args, shared, rtol, atol, sanity_check, raise_check):
    g = _num_laws(laws)
    vals, details = [], []
    for i in range(g):
        v, err, regions, evals = _adaptive_one(
            fn, _law_index(laws, i), (*_law_index(args, i), *shared), rtol, atol, MAX_REGIONS
        )
        vals.append(v)
        details.append((err, regions, evals))
    out_shape = _out_shape(fn, laws, args, shared)
    vals = np.stack(vals).reshape((g, *out_shape))
    worst = max(details, key=lambda t: t[0])
    d = int(np.shape(laws.means)[-1])
    kind = "Gauss-Kronrod 21" if d == 1 else f"product Gauss-Kronrod 21 ({21**d} nodes)"
    rule = (
        f"adaptive {kind} per component in its eigenbasis on [-{BOX_HALF_WIDTH:g}, "
        f"{BOX_HALF_WIDTH:g}]^{d} standard deviations, rtol {rtol:g}: "
        f"{sum(t[1] for t in details)} regions, {sum(t[2] for t in details)} evaluations, "
        f"largest estimated error {worst[0]:.2g}"
    )
    if sanity_check:
        _sanity(fn, laws, args, shared, vals, "adaptive", raise_error=raise_check, atol=atol)
        rule += _CHECK_PASSED
    return Estimate(vals, np.zeros_like(vals), "adaptive", rule)


def _subset(tree, idx):
    return jax.tree_util.tree_map(lambda leaf: leaf[idx], tree)


def _auto(fn, laws, args, shared, rtol, atol, key, num_samples, sanity_check):
    g = _num_laws(laws)
    d = int(np.shape(laws.means)[-1])
    if d > 3:
        est = expect_many(
            fn, laws, args, shared, method="monte_carlo", key=key, num_samples=num_samples
        )
        return est._replace(rule=est.rule + f" (auto: D = {d} > 3)")
    if d <= 2:
        est = _adaptive_many(fn, laws, args, shared, rtol, atol, sanity_check, raise_check=True)
        return est._replace(rule="auto: " + est.rule)
    # D = 3: Gauss-Hermite at n0, 2 n0, 4 n0: a law is done at the first n whose result
    # agrees with the one at n/2 (the n result is kept, typically far more accurate).
    drive = _gh_driver(fn)
    levels = AUTO_NODE_LEVELS[d]
    vals = None
    used_nodes = np.zeros(g, dtype=int)
    done = np.zeros(g, dtype=bool)
    active = np.arange(g)
    prev = np.asarray(drive(laws, args, shared, *_gh_nodes_cached(d, levels[0])))
    for n in levels[1:]:
        if active.size == 0:
            break
        sub_laws, sub_args = _subset((laws, args), active)
        cur = np.asarray(drive(sub_laws, sub_args, shared, *_gh_nodes_cached(d, n)))
        if vals is None:
            vals = np.zeros((g, *cur.shape[1:]), cur.dtype)
        diff = np.abs(cur - prev).reshape(active.size, -1).max(axis=1)
        scale = np.abs(cur).reshape(active.size, -1).max(axis=1)
        ok = (diff <= AUTO_AGREEMENT * rtol * scale + atol) & np.all(
            np.isfinite(cur.reshape(active.size, -1)), 1
        )
        vals[active[ok]] = cur[ok]
        used_nodes[active[ok]] = n
        done[active[ok]] = True
        active = active[~ok]
        prev = cur[~ok]
    if sanity_check and np.any(done):
        idx = np.flatnonzero(done)
        sub_laws, sub_args = _subset((laws, args), idx)
        passed = _sanity(
            fn, sub_laws, sub_args, shared, vals[idx], "gauss_hermite", raise_error=False, atol=atol
        )
        done[idx[~passed]] = False
    se = np.zeros_like(vals)
    check = _CHECK_PASSED if sanity_check else ""
    gh_note = ""
    if np.any(done):
        counts = sorted(set(used_nodes[done].tolist()))
        gh_note = (
            f"Gauss-Hermite at {int(done.sum())} of {g} laws ({'/'.join(map(str, counts))} "
            f"nodes per axis per component in its eigenbasis, each agreeing with half as many "
            f"to {AUTO_AGREEMENT * rtol:g}){check}"
        )
    if np.all(done):
        return Estimate(vals, se, "gauss_hermite", "auto: " + gh_note)
    rest = np.flatnonzero(~done)
    sub_laws, sub_args = _subset((laws, args), rest)
    est = expect_many(
        fn, sub_laws, sub_args, shared, method="monte_carlo", key=key, num_samples=num_samples
    )
    vals[rest] = est.value
    se[rest] = est.stderr
    methods = sorted({est.method} | ({"gauss_hermite"} if np.any(done) else set()))
    notes = [gh_note] if gh_note else []
    notes.append(f"{est.method} at {rest.size} of {g} laws: {est.rule}")
    return Estimate(vals, se, "+".join(methods), "auto: " + "; ".join(notes))


def expect(
    fn: Callable,
    law,
    args: tuple = (),
    **options,
) -> Estimate:
    r"""$\mathbb E_{x\sim q}[f(x,\ast\text{args})]$ for one mixture ``law`` $q$.

    The single-law form of :func:`expect_many` (same options); ``value`` and ``stderr`` have
    ``fn``'s per-point output shape (floats for scalar ``fn``).

    Example:
        >>> import jax.numpy as jnp, dsmtheory as dsm
        >>> dsm.enable_x64()
        >>> gm = dsm.single_gaussian([0.0], 2.0)
        >>> est = dsm.expectations.expect(lambda x: jnp.sum(x**2, -1), gm)
        >>> round(float(est.value), 10)
        4.0
    """
    est = expect_many(fn, _expand(law), (), tuple(args), **options)
    value = est.value[0]
    stderr = est.stderr[0]
    if np.ndim(value) == 0:
        value, stderr = float(value), float(stderr)
    return est._replace(value=value, stderr=stderr)
