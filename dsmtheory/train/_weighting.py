r"""How a training run weighs its per-example errors: the registry weightings
$\omega_\varepsilon(\lambda)$, the oracle $c^*(\lambda)$ and the matrix weight $M(x_t)$,
resolved into one :class:`LossWeighting`.

A weighting is resolved with the public registry only (``weightings.get`` and the
``params`` of the :class:`dsmtheory.weightings.Weighting` it returns): a registry entry whose
resolved parameters contain a ``schedule`` (a weighting defined through the sampling
density) is rebuilt with the training schedule unless the user gave one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .. import optimal as _optimal
from .. import weightings as _weightings

ORACLE_WEIGHTINGS = ("matrix_optimal", "c_star")
KINDS = ("scalar", "matrix")
F32 = jnp.float32


class LossWeighting(NamedTuple):
    r"""The weight of each example of a batch in the ε-space loss.

    ``kind="scalar"``: ``weigh`` returns $\omega_\varepsilon(\lambda_i)$ ``(B,)`` and the loss
    is $\omega_\varepsilon\|\hat\varepsilon-\varepsilon\|^2$. ``kind="matrix"``: it returns
    $M(x_t)$ ``(B, D, D)`` and the loss is $(\hat\varepsilon-\varepsilon)^\top
    M(\hat\varepsilon-\varepsilon)$.

    The built-in weightings are fixed functions of the data $(x_t,\lambda)$, so a sweep
    weighs each batch once per seed and shares the weights between capacities. A weighting
    with parameters or state of its own (EDM2's learned $u(\sigma)$, an online per-λ-bin
    estimate of $c^*$) would add ``init``/``update`` functions here and keep its state in
    :attr:`dsmtheory.train.TrainState.weighting_state`.

    Attributes:
        name: the configuration's weighting name.
        kind: ``"scalar"`` or ``"matrix"``.
        weigh: ``weigh(x_t, alpha, sigma, lam)`` with ``x_t`` ``(B, D)`` and the others
            ``(B,)`` → float32 ``(B,)`` or ``(B, D, D)``; pure and jittable.
    """

    name: str
    kind: str
    weigh: Callable


def registry_weighting(name: str, params: dict, schedule) -> _weightings.Weighting:
    """The registry weighting ``name`` with ``params``; one defined through the sampling
    density (its resolved parameters hold a ``schedule``) gets the training ``schedule``
    unless ``params`` names one.

    Raises:
        ValueError, TypeError: from the registry, naming the bad name or parameter.
    """
    weighting = _weightings.get(name, **params)
    if "schedule" in weighting.params and "schedule" not in params:
        weighting = _weightings.get(name, **params, schedule=schedule)
    return weighting


def c_star_weighting(params: dict, schedule, gm) -> _weightings.Weighting:
    r"""$\omega_\varepsilon=c^*(\lambda)$ of ``gm``: the registry's ``optimal`` table
    (:func:`dsmtheory.optimal.optimal_weighting`) on the schedule's λ range widened by 1
    on each side, 65 nodes (each to 1e-10 by the expectation engine; the spline between
    them was measured at most 2e-5 off on the ring at this spacing, irrelevant for training),
    unless ``params`` says otherwise."""
    params = dict(params)
    params.setdefault("gm", gm)
    params.setdefault("process", schedule.process)
    params.setdefault("lam_min", float(schedule.lam_min) - 1.0)
    params.setdefault("lam_max", float(schedule.lam_max) + 1.0)
    params.setdefault("num_grid", 65)
    return _weightings.get("optimal", **params)


def resolve_weighting(name: str, params: dict | None, schedule, gm) -> LossWeighting:
    r"""The :class:`LossWeighting` of a weighting name for data ``gm`` and ``schedule``.

    * ``matrix_optimal``: $M(x_t)=W^*(x_t)/\sigma^2=\mathrm{Cov}[\varepsilon\mid x_t]^{-1}$
      with $W^*$ of :func:`dsmtheory.optimal.matrix_weight` (Zhang et al. 2508.01597,
      FORMULAS.md §3 item 15), computed in float32 from a float32 copy of ``gm``;
    * ``c_star`` and ``optimal``: :func:`c_star_weighting`;
    * any other registry name: :func:`registry_weighting`.
    """
    params = dict(params or {})
    with jax.ensure_compile_time_eval():  # tables and copies are data, even inside a trace
        if name == "matrix_optimal":
            gm32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, F32), gm)
            per_point = jax.vmap(_optimal.matrix_weight, in_axes=(None, 0, 0, 0))

            def weigh_matrix(x_t, alpha, sigma, lam):
                w = per_point(gm32, x_t, alpha, sigma)
                return w / (sigma**2)[:, None, None]

            return LossWeighting(name, "matrix", weigh_matrix)
        if name in ("c_star", "optimal"):
            fn = c_star_weighting(params, schedule, gm)
        else:
            fn = registry_weighting(name, params, schedule)

    def weigh_scalar(x_t, alpha, sigma, lam):
        return jnp.asarray(fn(lam), F32)

    return LossWeighting(name, "scalar", weigh_scalar)
