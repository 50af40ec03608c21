r"""Small time-conditioned MLP score models as immutable JAX pytrees (the training path).

The network sees the VE-equivalent input $\tilde x=x_t/\alpha=x_0+\tilde\sigma\varepsilon$ and
the log-SNR $\lambda=\log(\alpha^2/\sigma^2)$, with $\tilde\sigma=e^{-\lambda/2}$
(FORMULAS.md §1). Following EDM's preconditioning (Karras et al. 2206.00364, FORMULAS.md §3
item 4) the input is scaled by $c_{in}=1/\sqrt{\tilde\sigma^2+\sigma_d^2}$ and the noise level
enters through $c_{noise}=\tfrac14\ln\tilde\sigma=-\lambda/8$, expanded into a few fixed
Fourier features

$$e(\lambda)=\big[c_{noise}\ (\text{if }E\text{ odd}),\ \sin(2^jc_{noise}),
\cos(2^jc_{noise})\big]_{j=0}^{\lfloor E/2\rfloor-1}\in\mathbb R^{E}.$$

The MLP $f_\theta:[c_{in}\tilde x,\ e(\lambda)]\mapsto\mathbb R^D$ (SiLU hidden layers, linear
output) predicts $\hat\varepsilon$ by default (``parameterization="eps"``), or $\hat x_0$
(``"x0"``). :func:`predict_eps` and :func:`as_score_fn` convert it, with
$\hat s=-\hat\varepsilon/\sigma$ and $\hat\varepsilon=(\tilde x-\hat x_0)/\tilde\sigma$.

**Why a plain registered pytree, not equinox.** The model is one tuple of ``(W, b)`` pairs
plus four static settings; ``jax.tree_util.register_pytree_node_class`` gives exactly the
immutable-pytree behaviour needed (``jit``/``vmap``/``grad``/optax see the arrays, the
settings are static) with no extra dependency. equinox is installed here but is not a declared
dependency of the package, and nothing in this module needs its filtering or module
machinery.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_count, check_real, check_scalar
from .parameterization import to_eps

__all__ = [
    "MLPScoreModel",
    "init_mlp",
    "mlp_for_param_count",
    "widths_for_param_count",
    "count_mlp_params",
    "num_params",
    "noise_embedding",
    "predict_eps",
    "as_score_fn",
    "PARAMETERIZATIONS",
]

PARAMETERIZATIONS = ("eps", "x0")


def noise_embedding(lam, embedding_dim: int) -> jax.Array:
    r"""Fixed Fourier features of $c_{noise}=-\lambda/8=\tfrac14\ln\tilde\sigma$.

    $[c_{noise}]$ first when ``embedding_dim`` is odd, then $\sin(2^jc)$, $\cos(2^jc)$ for
    $j=0,\dots,\lfloor E/2\rfloor-1$. ``lam`` ``(...)`` → ``(..., E)``.
    """
    embedding_dim = check_count(embedding_dim, "embedding_dim")
    c = -jnp.asarray(check_real(lam, "lam", finite=True)) / 8.0
    feats = [c[..., None]] if embedding_dim % 2 else []
    half = embedding_dim // 2
    if half:
        freqs = 2.0 ** jnp.arange(half, dtype=c.dtype)
        ang = c[..., None] * freqs.reshape((1,) * c.ndim + (half,))
        feats += [jnp.sin(ang), jnp.cos(ang)]
    return jnp.concatenate(feats, axis=-1)


@jax.tree_util.register_pytree_node_class
class MLPScoreModel:
    r"""Immutable MLP noise-prediction model $f_\theta(\tilde x,\lambda)$.

    A JAX pytree whose leaves are the layer weights and biases; ``dim``, ``embedding_dim``,
    ``parameterization`` and ``sigma_data`` are static. Build one with :func:`init_mlp` or
    :func:`mlp_for_param_count`.

    Attributes:
        layers: tuple of ``(W, b)`` with ``W`` ``(fan_in, fan_out)``; the first layer has
            ``fan_in = dim + embedding_dim``, the last ``fan_out = dim``.
        dim: data dimension $D$.
        embedding_dim: number $E$ of noise-level features.
        parameterization: ``"eps"`` (predict $\varepsilon$) or ``"x0"`` (predict $x_0$).
        sigma_data: $\sigma_d$ in $c_{in}=1/\sqrt{\tilde\sigma^2+\sigma_d^2}$.
    """

    __slots__ = ("layers", "dim", "embedding_dim", "parameterization", "sigma_data")

    def __init__(self, layers, dim: int, embedding_dim: int, parameterization: str, sigma_data):
        object.__setattr__(self, "layers", tuple(tuple(layer) for layer in layers))
        object.__setattr__(self, "dim", int(dim))
        object.__setattr__(self, "embedding_dim", int(embedding_dim))
        object.__setattr__(self, "parameterization", str(parameterization))
        object.__setattr__(self, "sigma_data", float(sigma_data))

    def __setattr__(self, name, value):
        raise AttributeError("MLPScoreModel is immutable")

    def tree_flatten(self):
        aux = (self.dim, self.embedding_dim, self.parameterization, self.sigma_data)
        return (self.layers,), aux

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        for name, value in zip(("layers",) + cls.__slots__[1:], children + tuple(aux), strict=True):
            object.__setattr__(obj, name, value)
        return obj

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden-layer widths."""
        return tuple(int(w.shape[1]) for w, _ in self.layers[:-1])

    def __repr__(self) -> str:
        try:  # leaves may be non-arrays after a tree_map (e.g. shapes)
            sizes = f"widths={self.widths}, params={num_params(self)}"
        except (AttributeError, IndexError, TypeError):
            sizes = f"layers={len(self.layers)}"
        return (
            f"MLPScoreModel(dim={self.dim}, {sizes}, embedding_dim={self.embedding_dim}, "
            f"parameterization={self.parameterization!r})"
        )

    def __call__(self, x, lam) -> jax.Array:
        r"""Raw network output (an $\varepsilon$ or $x_0$ prediction).

        Args:
            x: VE-equivalent input $\tilde x=x_t/\alpha$, ``(D,)`` (or ``(..., D)``).
            lam: log-SNR $\lambda$, scalar (or ``(...)`` matching the batch).

        Returns:
            ``(D,)`` (or ``(..., D)``) in the dtype of the weights. Per-example code:
            ``jax.vmap(model)`` batches it; it also broadcasts over leading dimensions.
        """
        dtype = self.layers[0][0].dtype
        x = jnp.asarray(x, dtype)
        lam = jnp.asarray(lam, dtype)
        batch = jnp.broadcast_shapes(x.shape[:-1], lam.shape)
        # explicit broadcasts, so that no implicit rank promotion is needed
        x = jnp.broadcast_to(x, batch + (self.dim,))
        lam = jnp.broadcast_to(lam, batch)
        c_in = jax.lax.rsqrt(jnp.exp(-lam) + self.sigma_data**2)
        emb = noise_embedding(lam, self.embedding_dim)
        h = jnp.concatenate([c_in[..., None] * x, emb], axis=-1)
        lead = (1,) * (h.ndim - 1)  # biases at the rank of the activations
        for w, b in self.layers[:-1]:
            h = jax.nn.silu(h @ w + b.reshape(lead + b.shape))
        w, b = self.layers[-1]
        return h @ w + b.reshape(lead + b.shape)


def count_mlp_params(dim: int, widths, embedding_dim: int) -> int:
    r"""Parameter count of an :class:`MLPScoreModel` with hidden ``widths`` $(h_1..h_L)$:
    $\sum_l (h_{l-1}+1)h_l$ with $h_0=D+E$ and $h_{L+1}=D$."""
    sizes = [dim + embedding_dim, *widths, dim]
    return int(sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)))


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def init_mlp(
    key: jax.Array,
    dim: int,
    widths=(64, 64),
    *,
    embedding_dim: int = 4,
    parameterization: str = "eps",
    sigma_data: float = 1.0,
    dtype=jnp.float32,
) -> MLPScoreModel:
    r"""A freshly initialized :class:`MLPScoreModel`.

    Hidden weights $W\sim N(0,1/\text{fan\_in})$ (LeCun normal), biases 0; the output layer
    is scaled by a further 0.1 so the initial prediction is small.

    Args:
        key: JAX PRNG key (same key → same parameters).
        dim: data dimension $D\ge1$.
        widths: hidden-layer widths (each $\ge1$; at least one layer).
        embedding_dim: number $E\ge1$ of noise features (see :func:`noise_embedding`).
        parameterization: ``"eps"`` (default) or ``"x0"``.
        sigma_data: $\sigma_d>0$ of the input scaling.
        dtype: parameter dtype; float32 by default (training path), float64 works.

    Raises:
        ValueError / TypeError: naming the bad argument.
    """
    dim = _check_int(dim, "dim", 1)
    embedding_dim = _check_int(embedding_dim, "embedding_dim", 1)
    widths = tuple(widths)
    if not widths:
        raise ValueError("widths must name at least one hidden layer")
    widths = tuple(_check_int(w, "widths", 1) for w in widths)
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"unknown parameterization {parameterization!r}; known: {', '.join(PARAMETERIZATIONS)}"
        )
    sigma_data = check_scalar(sigma_data, "sigma_data", positive=True)
    sizes = [dim + embedding_dim, *widths, dim]
    # One draw for all weights (one compiled op whatever the widths), split on the host.
    total = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    flat = np.asarray(jax.random.normal(key, (total,), dtype=dtype))
    layers, start = [], 0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        scale = (1.0 / fan_in) ** 0.5 * (0.1 if i == len(sizes) - 2 else 1.0)
        w = (scale * flat[start : start + fan_in * fan_out]).reshape(fan_in, fan_out)
        start += fan_in * fan_out
        layers.append((jnp.asarray(w, dtype=dtype), jnp.zeros((fan_out,), dtype=dtype)))
    return MLPScoreModel(layers, dim, embedding_dim, parameterization, sigma_data)


def widths_for_param_count(
    dim: int, target_params: int, *, depth: int = 2, embedding_dim: int = 4
) -> tuple[int, ...]:
    r"""Equal hidden widths $(h,\dots,h)$ (``depth`` of them) whose parameter count
    $(D+E+1)h+(L-1)(h+1)h+(h+1)D$ is closest to ``target_params`` (ties to the smaller).

    Raises:
        ValueError: ``target_params`` below the width-1 count, or bad ``dim``/``depth``.
    """
    dim = _check_int(dim, "dim", 1)
    depth = _check_int(depth, "depth", 1)
    embedding_dim = _check_int(embedding_dim, "embedding_dim", 1)
    target = _check_int(target_params, "target_params", 1)
    smallest = count_mlp_params(dim, (1,) * depth, embedding_dim)
    if target < smallest:
        raise ValueError(
            f"target_params must be >= {smallest}, the count of width-1 hidden layers "
            f"(dim={dim}, depth={depth}, embedding_dim={embedding_dim}); got {target}"
        )
    best_w, best_err = 1, abs(smallest - target)
    w = 1
    while True:
        w += 1
        c = count_mlp_params(dim, (w,) * depth, embedding_dim)
        if abs(c - target) < best_err:
            best_w, best_err = w, abs(c - target)
        if c >= target:
            break
    return (best_w,) * depth


def mlp_for_param_count(
    key: jax.Array,
    dim: int,
    target_params: int,
    *,
    depth: int = 2,
    embedding_dim: int = 4,
    parameterization: str = "eps",
    sigma_data: float = 1.0,
    dtype=jnp.float32,
) -> MLPScoreModel:
    r"""An MLP of ``depth`` equal-width hidden layers whose parameter count is closest to
    ``target_params`` (Zhang et al. 2508.01597 use 25/100/500/1000 parameters, FORMULAS.md §7).

    With width $h$ the count is $(D+E+1)h+(L-1)(h+1)h+(h+1)D$; the width $h\ge1$ minimizing
    $|\text{count}-\text{target}|$ is chosen (ties to the smaller model). **Promise:** the
    count is the closest one reachable with equal widths, so the error is at most half the
    step between consecutive widths; read the exact count with :func:`num_params`.

    Tiny targets: for $D=2$, $E=4$, ``depth=2`` the count is $h^2+10h+2$, so target 25 gives
    width 2 (two hidden layers of 2 SiLU units, 26 parameters), target 100 gives width 6
    (98), 500 gives 18 (506), 1000 gives 27 (1001).

    Args:
        key: JAX PRNG key.
        dim: data dimension $D$.
        target_params: wanted number of parameters; must be at least the width-1 count.
        depth: number $L\ge1$ of hidden layers.
        embedding_dim, parameterization, sigma_data, dtype: as :func:`init_mlp`.

    Raises:
        ValueError: ``target_params`` below the smallest model of this shape, or bad input.
    """
    widths = widths_for_param_count(dim, target_params, depth=depth, embedding_dim=embedding_dim)
    return init_mlp(
        key,
        dim,
        widths,
        embedding_dim=embedding_dim,
        parameterization=parameterization,
        sigma_data=sigma_data,
        dtype=dtype,
    )


def num_params(model) -> int:
    """Total number of scalar parameters in a model (any pytree of arrays)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(model)))


def predict_eps(model: MLPScoreModel, x_t, alpha, sigma) -> jax.Array:
    r"""$\hat\varepsilon$ at $x_t=\alpha x_0+\sigma\varepsilon$, for either parameterization.

    Feeds $\tilde x=x_t/\alpha$ and $\lambda=\log(\alpha^2/\sigma^2)$; for ``"x0"`` converts
    with $\hat\varepsilon=(x_t-\alpha\hat x_0)/\sigma=(\tilde x-\hat x_0)/\tilde\sigma$,
    $\tilde\sigma=\sigma/\alpha$ (FORMULAS.md §1), by
    :func:`dsmtheory.parameterization.to_eps`.

    Args:
        model: the network. x_t: ``(..., D)``. alpha, sigma: scalars or ``(...)``.
    """
    x_t = jnp.asarray(x_t)
    alpha = jnp.asarray(alpha, x_t.dtype)
    sigma = jnp.asarray(sigma, x_t.dtype)
    a = alpha[..., None] if alpha.ndim else alpha
    lam = 2.0 * (jnp.log(alpha) - jnp.log(sigma))
    out = model(x_t / a, lam)
    return to_eps(out, model.parameterization, x_t, alpha, sigma, sigma_data=model.sigma_data)


def as_score_fn(model: MLPScoreModel) -> Callable[[jax.Array, jax.Array], jax.Array]:
    r"""The VE score function ``score_fn(x, sigma)`` of a model, for :mod:`dsmtheory.sampling`:
    $\hat s(x,\sigma)=-\hat\varepsilon(x,\sigma)/\sigma$ with $\alpha=1$. Batches over the
    leading dimensions of ``x``."""

    def score_fn(x, sigma):
        return -predict_eps(model, x, 1.0, sigma) / sigma

    return score_fn
