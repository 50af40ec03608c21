r"""Low-rank-plus-diagonal Gaussian algebra without $D\times D$ matrices (pure JAX).

A covariance $S=FF^\top+\mathrm{diag}(d)$ with $F$ of shape $(D,r)$ and $d>0$ is whitened by
its diagonal: $S=\Delta^{1/2}(I+GG^\top)\Delta^{1/2}$ with $\Delta=\mathrm{diag}(d)$ and
$G=\Delta^{-1/2}F$. The $r\times r$ capacitance matrix $C=I+G^\top G$ has the
eigendecomposition $C=W\,\mathrm{diag}(1+\gamma)\,W^\top$ ($\gamma\ge0$ the squared singular
values of $G$), and with $H=GW$ (shape $(D,r)$):

* Woodbury: $(I+GG^\top)^{-1}=I-H\,\mathrm{diag}\big(\tfrac1{1+\gamma}\big)H^\top$, so for a
  whitened vector $v=\Delta^{-1/2}(x-\mu)$, $a=\mathrm{diag}(\tfrac1{1+\gamma})H^\top v$ and
  $u=v-Ha$ give $S^{-1}(x-\mu)=\Delta^{-1/2}u$;
* the Mahalanobis term $(x-\mu)^\top S^{-1}(x-\mu)=v^\top u=\|u\|^2+\|a\|^2$ (a sum of
  squares: $v^\top u=\|u\|^2+a^\top H^\top u$ and $H^\top u=a$), never the difference
  $\|v\|^2-\|\cdot\|^2$ of two large numbers;
* the matrix determinant lemma: $\log\det S=\sum_i\log d_i+\sum_j\log(1+\gamma_j)$;
* $\mathrm{diag}(S^{-1})_i=d_i^{-1}\big(1-\sum_jH_{ij}^2/(1+\gamma_j)\big)$.

The capacitance is decomposed from the Gram matrix $G^\top G$ (an $r\times r$ ``eigh``, far
cheaper on CPU than an SVD of $G$: 0.02 s against 5 s for ten $3072\times64$ factors here).
Its price is accuracy in the directions where $G$ is small relative to its largest singular
value: rounding there is about $\varepsilon(1+\gamma_{\max})$ relative, 2e-10 at
$\gamma_{\max}=10^6$ (a component of variance 1 seen at noise σ = 1e-3).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Whitened(NamedTuple):
    """Per-component quantities of $S_k=F_kF_k^\\top+\\mathrm{diag}(d_k)$ (leading axis K).

    Attributes:
        rsd: ``(K, D)`` $\\sqrt{d_k}$.
        h: ``(K, D, r)`` $H_k=\\Delta_k^{-1/2}F_kW_k$.
        inv1g: ``(K, r)`` $1/(1+\\gamma_k)$.
        logdet: ``(K,)`` $\\log\\det S_k$.
        prec_diag: ``(K, D)`` the diagonal of $S_k^{-1}$.
    """

    rsd: jax.Array
    h: jax.Array
    inv1g: jax.Array
    logdet: jax.Array
    prec_diag: jax.Array


def whiten(factors, diag) -> Whitened:
    """Whiten ``factors (K, D, r)`` by ``diag (K, D)`` (every entry > 0); see the module."""
    rsd = jnp.sqrt(diag)
    g = factors / rsd[:, :, None]
    gram = jnp.einsum("kdi,kdj->kij", g, g)
    gram = 0.5 * (gram + jnp.swapaxes(gram, -1, -2))
    gamma, w = jnp.linalg.eigh(gram)
    gamma = jnp.maximum(gamma, 0.0)  # a PSD Gram matrix: negatives are rounding
    h = jnp.einsum("kdi,kij->kdj", g, w)
    inv1g = 1.0 / (1.0 + gamma)
    logdet = jnp.sum(jnp.log(diag), axis=-1) + jnp.sum(jnp.log1p(gamma), axis=-1)
    shrink = jnp.einsum("kdj,kj->kd", h * h, inv1g)
    prec_diag = jnp.maximum(1.0 - shrink, 0.0) / diag
    return Whitened(rsd, h, inv1g, logdet, prec_diag)


def solve_terms(wh: Whitened, means, x):
    r"""For points ``x (B, D)``: the whitened residuals $u$ ``(K, B, D)`` with
    $S_k^{-1}(x-\mu_k)=u_k/\sqrt{d_k}$, and the Mahalanobis terms ``(K, B)``."""
    v = (x[None, :, :] - means[:, None, :]) / wh.rsd[:, None, :]  # (K, B, D)
    a = jnp.einsum("kbd,kdr->kbr", v, wh.h) * wh.inv1g[:, None, :]
    u = v - jnp.einsum("kbr,kdr->kbd", a, wh.h)
    maha = jnp.sum(u * u, axis=-1) + jnp.sum(a * a, axis=-1)
    return u, maha


def apply_inverse(wh: Whitened, v):
    r"""$S_k^{-1}v_{kb}$ for ``v (K, B, D)``."""
    vw = v / wh.rsd[:, None, :]
    a = jnp.einsum("kbd,kdr->kbr", vw, wh.h) * wh.inv1g[:, None, :]
    return (vw - jnp.einsum("kbr,kdr->kbd", a, wh.h)) / wh.rsd[:, None, :]


def inverse_low_rank(wh: Whitened):
    r"""$L_k$ ``(K, D, r)`` with $S_k^{-1}=\mathrm{diag}(1/d_k)-L_kL_k^\top$."""
    return wh.h * jnp.sqrt(wh.inv1g)[:, None, :] / wh.rsd[:, :, None]
