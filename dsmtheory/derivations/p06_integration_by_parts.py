r"""P6: Kingma & Gao's integration by parts (KG eq. 10).

$$\mathcal L_w=w(\lambda_{min})\mathcal L(\lambda_{min})+\int w\,\mathcal L'\,d\lambda
=w(\lambda_{max})\mathcal L(\lambda_{max})-\int w'\,\mathcal L\,d\lambda .$$

Check: data $x_0\sim N(0,s^2)$ (1-D, VP), fixed denoiser $\hat\varepsilon=c\,\sigma\,x_t$, so
$\mathcal L'(\lambda)=\tfrac12\mathbb E(\varepsilon-\hat\varepsilon)^2
=\tfrac12[(1-c\sigma^2)^2+c^2\sigma^2\alpha^2s^2]$ is rational in $e^\lambda$ and sympy gives
the antiderivative $\mathcal L$ (checked by differentiation). Both sides are then computed by
adaptive quadrature (``scipy.integrate.quad``, tolerance 1e-9 relative) for the sigmoid,
EDM and sech weights on $[-10,10]$.
"""

from __future__ import annotations

import sympy as sp
from scipy.integrate import quad

from ._base import Check, Derivation, close, is_identity
from ._common import lam, normal_pdf, sech, sigmoid, vp_alpha2, vp_sigma2

RTOL = 1e-9  # two adaptive-quadrature evaluations (epsrel 1e-12) of smooth integrands
LAM_MIN, LAM_MAX = -10.0, 10.0
C_DENOISER, S_DATA = sp.Rational(1, 2), sp.Rational(3, 2)


def loss_derivative() -> sp.Expr:
    r"""$\mathcal L'(\lambda)$ for the fixed affine denoiser on Gaussian data."""
    c, s2 = C_DENOISER, S_DATA**2
    sig2, a2 = vp_sigma2(lam), vp_alpha2(lam)
    return sp.Rational(1, 2) * ((1 - c * sig2) ** 2 + c**2 * sig2 * a2 * s2)


def weights() -> dict[str, sp.Expr]:
    """The total weights w(λ) used in the check."""
    return {
        "sigmoid(2-lam)": sigmoid(2 - lam),
        "EDM": normal_pdf(lam, sp.Rational(12, 5), sp.Rational(12, 5)) * (sp.exp(-lam) + 0.25),
        "sech(lam/2)": sech(lam / 2),
    }


def ibp_sides(w: sp.Expr, Lp: sp.Expr, L: sp.Expr) -> tuple[float, float]:
    """Left and right side of KG eq. 10 by quadrature."""
    f = sp.lambdify(lam, w * Lp, "math")
    g = sp.lambdify(lam, sp.diff(w, lam) * L, "math")
    wf, Lf = sp.lambdify(lam, w, "math"), sp.lambdify(lam, L, "math")
    lhs = wf(LAM_MIN) * Lf(LAM_MIN) + quad(f, LAM_MIN, LAM_MAX, epsabs=0, epsrel=1e-12)[0]
    rhs = wf(LAM_MAX) * Lf(LAM_MAX) - quad(g, LAM_MIN, LAM_MAX, epsabs=0, epsrel=1e-12)[0]
    return lhs, rhs


def _checks() -> list[Check]:
    out = []
    Lp = loss_derivative()
    e = sp.Symbol("e", positive=True)
    Lp_e = sp.cancel(Lp.subs(lam, sp.log(e)))
    L = sp.integrate(Lp_e / e, e).subs(e, sp.exp(lam))  # dλ = de/e
    out.append(Check("sympy antiderivative: dL/dlam = L'", is_identity(sp.diff(L, lam), Lp)))
    for name, w in weights().items():
        lhs, rhs = ibp_sides(w, Lp, L)
        out.append(
            Check(
                f"{name}: both sides of eq. 10 agree",
                close(lhs, rhs, RTOL),
                f"{lhs:.12g} vs {rhs:.12g}",
            )
        )
    return out


DERIVATION = Derivation(
    name="p06_integration_by_parts",
    title="P6 Kingma-Gao integration by parts (eq. 10)",
    statement=r"$\mathcal L_w=w(\lambda_{min})\mathcal L(\lambda_{min})+\int w\mathcal L'"
    r"=w(\lambda_{max})\mathcal L(\lambda_{max})-\int w'\mathcal L$.",
    source="Kingma & Gao 2023 eq. 10; FORMULAS.md §5 P6",
    method="sympy antiderivative of a closed-form L'(lam); both sides by scipy quad, rtol 1e-9",
    kind="numeric",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
