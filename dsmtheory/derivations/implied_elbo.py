r"""Kingma & Gao Table 1: the ELBO weighting is $w\equiv1$, i.e. $\omega_\varepsilon=1/p(\lambda)$;
equivalently the score-loss weight $\Lambda=g^2$ with $t\sim U$ gives $w\equiv2$ in the
$\tfrac12\int w\,\|\varepsilon-\hat\varepsilon\|^2$ convention of §1 (the factor is a constant).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity

t = sp.Symbol("t", real=True)
lam_t = sp.Function("lam")  # any decreasing schedule lam(t)
sig_t = sp.Function("sigma")


def _checks() -> list[Check]:
    p = sp.Symbol("p", positive=True)
    lam_dot = sp.diff(lam_t(t), t)
    g2 = -(sig_t(t) ** 2) * lam_dot  # FORMULAS §1 key identity (proved in p13)
    p_lam = -1 / lam_dot  # density of lam when t ~ U(0,1)
    w_score = 2 * g2 * p_lam / sig_t(t) ** 2  # w = 2 Lambda p / sigma^2
    return [
        Check("omega_eps = 1/p gives w = p omega_eps = 1", is_identity(p * (1 / p), 1)),
        Check("Lambda = g^2 with t ~ U gives w = 2 for any schedule", is_identity(w_score, 2)),
        Check(
            "Lambda = sigma^2 gives w = 2 p(lam) (the 'simple' loss)",
            is_identity(2 * sig_t(t) ** 2 * p_lam / sig_t(t) ** 2, 2 * p_lam),
        ),
    ]


DERIVATION = Derivation(
    name="implied_elbo",
    title="Table 1: ELBO is w = 1 (score weight g^2 gives w = 2)",
    statement=r"$\omega_\varepsilon=1/p$ gives $w\equiv1$; $\Lambda=g^2$ with $t\sim U$ gives "
    r"$w=2\Lambda p/\sigma^2\equiv2$; $\Lambda=\sigma^2$ gives $w=2p(\lambda)$.",
    source="Kingma & Gao 2023 Table 1; Song et al. 2021; FORMULAS.md §1, §3 items 1-2, §5 P8",
    method="sympy with generic functions lam(t), sigma(t); cancel",
    kind="symbolic",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
