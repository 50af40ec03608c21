r"""Kingma & Gao Table 1: EDM's implied weighting
$w(\lambda)=N(\lambda;2.4,2.4^2)\,(e^{-\lambda}+\sigma_d^2)/\sigma_d^2$, i.e.
$\propto N(\lambda;2.4,2.4^2)(e^{-\lambda}+0.25)$ at $\sigma_d=0.5$.

$\ln\tilde\sigma\sim N(P_m,P_s^2)$ with $\tilde\sigma=e^{-\lambda/2}$ gives
$p(\lambda)=p_\sigma(\tilde\sigma)\tilde\sigma/2=N(\lambda;-2P_m,4P_s^2)$; the x-loss weight
$(\tilde\sigma^2+\sigma_d^2)/(\tilde\sigma\sigma_d)^2$ times $\kappa_x=e^{-\lambda}$ is
$\omega_\varepsilon=1+e^{-\lambda}/\sigma_d^2$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import lam, normal_pdf, sigma_data

P_m, P_s = sp.Rational(-6, 5), sp.Rational(6, 5)


def edm_omega_eps() -> sp.Expr:
    """ε-space multiplier of EDM's weighting."""
    st = sp.exp(-lam / 2)
    return (st**2 + sigma_data**2) / (st * sigma_data) ** 2 * sp.exp(-lam)


def _checks() -> list[Check]:
    out = []
    ls = sp.Symbol("ls", real=True)  # ln sigma-tilde
    p_ls = normal_pdf(ls, P_m, P_s)
    st = sp.exp(-lam / 2)
    # density of lam = -2 ls: p(lam) = p_ls(-lam/2) * |d ls / d lam|
    p_lam = p_ls.subs(ls, -lam / 2) * sp.Rational(1, 2)
    out.append(
        Check(
            "p(lam) = N(lam; 2.4, 2.4^2)",
            is_identity(
                sp.expand(sp.log(p_lam)),
                sp.expand(sp.log(normal_pdf(lam, sp.Rational(12, 5), sp.Rational(12, 5)))),
            ),
        )
    )
    p_sig = p_ls.subs(ls, sp.log(st)) / st  # density of sigma-tilde (log-normal)
    out.append(
        Check(
            "p(lam) = p_sigma(e^(-lam/2)) e^(-lam/2)/2 (Jacobian rule)",
            is_identity(sp.expand(sp.log(p_sig * st / 2)), sp.expand(sp.log(p_lam))),
        )
    )
    out.append(
        Check(
            "omega_eps = 1 + e^(-lam)/sigma_d^2",
            is_identity(edm_omega_eps(), 1 + sp.exp(-lam) / sigma_data**2),
        )
    )
    w = p_lam * edm_omega_eps()
    target = (
        normal_pdf(lam, sp.Rational(12, 5), sp.Rational(12, 5))
        * (sp.exp(-lam) + sigma_data**2)
        / sigma_data**2
    )
    out.append(
        Check(
            "w = N(lam;2.4,2.4^2)(e^-lam + sigma_d^2)/sigma_d^2",
            is_identity(sp.expand(sp.log(w)), sp.expand(sp.log(target))) or is_identity(w, target),
        )
    )
    wd = normal_pdf(lam, sp.Rational(12, 5), sp.Rational(12, 5)) * (
        sp.exp(-lam) + sp.Rational(1, 4)
    )
    dlog = sp.diff(sp.log(wd), lam)
    lo, hi = sp.Rational(-3315, 1000), sp.Rational(-3305, 1000)
    # exact expression evaluated at rational points with 30 significant digits
    left, right = dlog.subs(lam, lo).evalf(30), dlog.subs(lam, hi).evalf(30)
    out.append(
        Check(
            "sigma_d = 0.5: (log w)' goes from + to - inside (-3.315, -3.305), "
            "a local maximum at lam* = -3.31 (sigma-tilde = e^{-lam*/2} = 5.23)",
            bool(left > 0 and right < 0),
            f"(log w)'(-3.315) = {float(left):.2e}, (log w)'(-3.305) = {float(right):.2e}",
        )
    )
    return out


def expressions() -> dict:
    """EDM ε multiplier for ``weightings.get('edm', sigma_data=)``."""
    return {"edm": (edm_omega_eps(), (lam, sigma_data))}


DERIVATION = Derivation(
    name="implied_edm",
    title="Table 1: EDM implies w = N(lam;2.4,2.4^2)(e^-lam + sigma_d^2)",
    statement=r"$p(\lambda)=N(\lambda;2.4,2.4^2)$, $\omega_\varepsilon=1+e^{-\lambda}/\sigma_d^2$, "
    r"$w\propto N(\lambda;2.4,2.4^2)(e^{-\lambda}+\sigma_d^2)$, peaking at $\lambda^*=-3.31$ for "
    r"$\sigma_d=0.5$.",
    source="Karras et al. 2022; Kingma & Gao 2023 Table 1; FORMULAS.md §3 item 4, §5 P8",
    method="sympy change of variables and cancel; the peak by the sign change of (log w)' "
    "at two rational points",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
