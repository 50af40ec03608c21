r"""Prediction conversions between ε, $x_0$, score and v (FORMULAS.md §1).

$\hat s=-\hat\varepsilon/\sigma$, $\hat x=(x_t-\sigma\hat\varepsilon)/\alpha$,
$\hat v=\alpha\hat\varepsilon-\sigma\hat x$. They are consistent with Tweedie
($\hat x=(x_t+\sigma^2\hat s)/\alpha$), and in VP invert as
$\hat\varepsilon=\alpha\hat v+\sigma x_t$,
$\hat x=\alpha x_t-\sigma\hat v$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import alpha, sigma

xt, eps_hat = sp.symbols("x_t epsilon_hat", real=True)


def _checks() -> list[Check]:
    s_hat = -eps_hat / sigma
    x_hat = (xt - sigma * eps_hat) / alpha
    v_hat = alpha * eps_hat - sigma * x_hat
    vp = {sigma: sp.sqrt(1 - alpha**2)}
    return [
        Check(
            "Tweedie: x_hat = (x_t + sigma^2 s_hat)/alpha",
            is_identity(x_hat, (xt + sigma**2 * s_hat) / alpha),
        ),
        Check(
            "v_hat = ((alpha^2+sigma^2) eps_hat - sigma x_t)/alpha",
            is_identity(v_hat, ((alpha**2 + sigma**2) * eps_hat - sigma * xt) / alpha),
        ),
        Check(
            "VP: eps_hat = alpha v_hat + sigma x_t",
            is_identity((alpha * v_hat + sigma * xt).subs(vp), eps_hat),
        ),
        Check(
            "VP: x_hat = alpha x_t - sigma v_hat",
            is_identity((alpha * xt - sigma * v_hat).subs(vp), x_hat.subs(vp)),
        ),
    ]


def expressions() -> dict:
    """x̂, v̂, ŝ and EDM's F̂ from ε̂ (per coordinate), for ``parameterization.convert``."""
    from ._common import sigma_data

    x_hat = (xt - sigma * eps_hat) / alpha
    st = sigma / alpha
    c_skip = sigma_data**2 / (st**2 + sigma_data**2)
    c_out = st * sigma_data / sp.sqrt(st**2 + sigma_data**2)
    syms = (xt, eps_hat, alpha, sigma)
    return {
        "x0": (x_hat, syms),
        "v": (alpha * eps_hat - sigma * x_hat, syms),
        "score": (-eps_hat / sigma, syms),
        "F": ((x_hat - c_skip * xt / alpha) / c_out, (*syms, sigma_data)),
    }


DERIVATION = Derivation(
    name="prediction_conversions",
    title="Prediction conversions eps <-> x0 <-> score <-> v",
    statement=r"$\hat s=-\hat\varepsilon/\sigma$, $\hat x=(x_t-\sigma\hat\varepsilon)/\alpha="
    r"(x_t+\sigma^2\hat s)/\alpha$, $\hat v=\alpha\hat\varepsilon-\sigma\hat x$; VP: "
    r"$\hat\varepsilon=\alpha\hat v+\sigma x_t$, $\hat x=\alpha x_t-\sigma\hat v$.",
    source="FORMULAS.md §1 (converting between predictions)",
    method="sympy cancel",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
