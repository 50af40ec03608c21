r"""P4: Lipschitz ratio of the smoothed KL (smoothed-KL Thm 4.1) [R].

The local KL in the reverse mean $\hat\mu$ between $N(\mu,v_tI)$ and $N(\hat\mu,v_tI)$ has
Hessian $v_t^{-1}I$; after smoothing both by $N(0,\Sigma)$ it is
$\mathrm{KL}(N(\mu,v_tI+\Sigma)\|N(\hat\mu,v_tI+\Sigma))$ with Hessian $(v_tI+\Sigma)^{-1}$,
so $L=1/(v_t+\lambda_{min}(\Sigma))$ and for $\Sigma=\tau^2I$ the ratio of Lipschitz
constants is $v_t/(v_t+\tau^2)=\omega_\tau$. Smoothness × variance then scales by
$\omega\cdot\omega^2=\omega^3$ (Cor. 4.3).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import tau

v = sp.Symbol("v", positive=True)
a, b = sp.symbols("a b", positive=True)  # eigenvalues of a diagonal Sigma


def gaussian_kl(m1: sp.Matrix, S1: sp.Matrix, m2: sp.Matrix, S2: sp.Matrix) -> sp.Expr:
    r"""$\mathrm{KL}(N(m_1,S_1)\|N(m_2,S_2))$ for sympy matrices (standard closed form)."""
    d = S1.shape[0]
    S2i = S2.inv()
    diff = m2 - m1
    return sp.Rational(1, 2) * (
        (S2i * S1).trace() + (diff.T * S2i * diff)[0, 0] - d + sp.log(S2.det() / S1.det())
    )


def _checks() -> list[Check]:
    out = []
    mu = sp.Matrix(sp.symbols("mu1 mu2", real=True))
    mh = sp.Matrix(sp.symbols("mh1 mh2", real=True))
    eye = sp.eye(2)
    kl_raw = gaussian_kl(mu, v * eye, mh, v * eye)
    h_raw = sp.hessian(kl_raw, list(mh))
    out.append(
        Check(
            "Hessian of the unsmoothed KL is I/v",
            all(is_identity(x, y) for x, y in zip(h_raw, eye / v, strict=True)),
        )
    )
    Sigma = sp.diag(a, b)
    kl_s = gaussian_kl(mu, v * eye + Sigma, mh, v * eye + Sigma)
    h_s = sp.hessian(kl_s, list(mh))
    target = (v * eye + Sigma).inv()
    out.append(
        Check(
            "Hessian of the smoothed KL is (vI+Sigma)^-1",
            all(is_identity(x, y) for x, y in zip(h_s, target, strict=True)),
        )
    )
    eig = sorted(h_s.eigenvals().keys(), key=sp.default_sort_key)
    lmax = {sp.simplify(e) for e in eig}
    out.append(
        Check(
            "eigenvalues 1/(v+a), 1/(v+b): L = 1/(v+lambda_min(Sigma))",
            lmax == {1 / (v + a), 1 / (v + b)},
        )
    )
    ratio = (1 / (v + tau**2)) / (1 / v)
    out.append(
        Check(
            "Sigma=tau^2 I: L_smoothed/L = v/(v+tau^2) = omega_tau",
            is_identity(ratio, v / (v + tau**2)),
        )
    )
    w = v / (v + tau**2)
    out.append(
        Check(
            "smoothness x variance scales by omega^3",
            is_identity((w * (1 / v)) * (w**2 * 1) / (1 / v), w**3),
        )
    )
    return out


DERIVATION = Derivation(
    name="p04_lipschitz_ratio",
    title="P4 Lipschitz ratio of the smoothed KL equals omega_tau",
    statement=r"$\nabla^2_{\hat\mu}\mathrm{KL}$ goes from $v_t^{-1}I$ to $(v_tI+\Sigma)^{-1}$, "
    r"so $L=1/(v_t+\lambda_{min}(\Sigma))$; for $\Sigma=\tau^2I$, $L_\Sigma/L=v_t/(v_t+\tau^2)"
    r"=\omega_\tau$, and smoothness × variance scales by $\omega^3$.",
    source="Smoothed-KL paper Thm 4.1, Cor. 4.3 [R]; FORMULAS.md §5 P4",
    method="sympy hessian of the Gaussian KL closed form (2-D, diagonal Sigma), eigenvals",
    kind="symbolic",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
