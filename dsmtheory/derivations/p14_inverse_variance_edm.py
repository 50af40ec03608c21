r"""P14: inverse-variance weighting for Gaussian data is EDM's weighting.

For $x_0\sim N(0,s^2)$ in VE-equivalent variables ($\tilde x=x_0+\tilde\sigma\varepsilon$):
$\mathrm{mmse}=\tilde\sigma^2s^2/(\tilde\sigma^2+s^2)$ per coordinate, so
$1/\mathrm{mmse}=(\tilde\sigma^2+s^2)/(\tilde\sigma^2s^2)$, EDM's $\lambda(\tilde\sigma)$ with
$\sigma_d=s$. In ε-space the irreducible variance is $\mathrm{sigmoid}(\lambda+\log s^2)$ and
its inverse $1+e^{-\lambda}/s^2$ ($s=1$: the VP v-loss factor).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import lam, sigmoid, to_snr

st = sp.Symbol("sigma_tilde", positive=True)
s_data = sp.Symbol("s", positive=True)


def _checks() -> list[Check]:
    # Gaussian conditioning of x0 on x~ = x0 + st eps
    mmse = s_data**2 - s_data**4 / (s_data**2 + st**2)
    edm_x_weight = (st**2 + s_data**2) / (st * s_data) ** 2
    out = [
        Check(
            "mmse = st^2 s^2/(st^2+s^2)", is_identity(mmse, st**2 * s_data**2 / (st**2 + s_data**2))
        ),
        Check("1/mmse = EDM lambda(sigma) with sigma_d = s", is_identity(1 / mmse, edm_x_weight)),
    ]
    # eps-space: Var(eps | x~) = 1 - st^2/(s^2+st^2); st^2 = e^{-lam}
    eps_var = (1 - st**2 / (s_data**2 + st**2)).subs(st, sp.exp(-lam / 2))
    out.append(
        Check(
            "eps irreducible variance = sigmoid(lam + log s^2)",
            is_identity(to_snr(eps_var), to_snr(sigmoid(lam + sp.log(s_data**2)))),
        )
    )
    out.append(
        Check(
            "its inverse = 1 + e^-lam/s^2",
            is_identity(to_snr(1 / eps_var), to_snr(1 + sp.exp(-lam) / s_data**2)),
        )
    )
    out.append(
        Check(
            "s = 1: equals the VP v-factor 1 + e^-lam",
            is_identity(to_snr((1 / eps_var).subs(s_data, 1)), to_snr(1 + sp.exp(-lam))),
        )
    )
    return out


DERIVATION = Derivation(
    name="p14_inverse_variance_edm",
    title="P14 inverse-variance weighting for Gaussian data is EDM",
    statement=r"$1/\mathrm{mmse}=(\tilde\sigma^2+s^2)/(\tilde\sigma^2s^2)$ = EDM's "
    r"$\lambda(\tilde\sigma)$ with $\sigma_d=s$; in ε-space $1+e^{-\lambda}/s^2$.",
    source="Derived (FORMULAS.md §5 P14, §6 (c)); Karras et al. 2022",
    method="sympy Gaussian conditioning, cancel in SNR",
    kind="symbolic",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
