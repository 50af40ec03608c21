r"""Schedule densities $p(\lambda)=-dt/d\lambda$ for $t\sim U(0,1)$ (FORMULAS.md §2).

Each schedule's $t(\lambda)$ is obtained by solving $\lambda(t)$ with sympy, and its density
by differentiating:

* VP linear-β:
  $p=\mathrm{sigmoid}(-\lambda)/\sqrt{\beta_{min}^2+2\Delta\beta\,\mathrm{softplus}(-\lambda)}$;
* VE geometric: $1/(2\log(\sigma_{max}/\sigma_{min}))$;
* EDM sampling: $e^{-\lambda/(2\rho)}/(2\rho(\sigma_{max}^{1/\rho}-\sigma_{min}^{1/\rho}))$;
* cosine (shift $s$): $\mathrm{sech}(\lambda/2-s)/(2\pi)$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import lam, s, sech, sigmoid, to_snr

t = sp.Symbol("t", positive=True)
bmin, bmax = sp.symbols("beta_min beta_max", positive=True)
smin, smax, rho = sp.symbols("sigma_min sigma_max rho", positive=True)
b = sp.Symbol("b", positive=True)


def t_of_lam() -> dict[str, tuple[sp.Expr, tuple]]:
    """t(λ) of each untruncated schedule (sympy), with its parameters."""
    db = bmax - bmin
    sp_ = sp.log(1 + sp.exp(-lam))  # softplus(-lam) = B(t)
    return {
        "vp_linear": (2 * sp_ / (bmin + sp.sqrt(bmin**2 + 2 * db * sp_)), (lam, bmin, bmax)),
        "ve": ((-lam / 2 - sp.log(smin)) / sp.log(smax / smin), (lam, smin, smax)),
        "edm_sampling": (
            (sp.exp(-lam / (2 * rho)) - smin ** (1 / rho))
            / (smax ** (1 / rho) - smin ** (1 / rho)),
            (lam, smin, smax, rho),
        ),
        "cosine": (2 / sp.pi * sp.atan(sp.exp(-(lam - 2 * s) / 2)), (lam, s)),
    }


def densities() -> dict[str, tuple[sp.Expr, tuple]]:
    """p(λ) = -dt/dλ of each untruncated schedule."""
    return {k: (-sp.diff(e, lam), syms) for k, (e, syms) in t_of_lam().items()}


def _checks() -> list[Check]:
    out = []
    # VP linear: B(t) = beta_min t + (Δβ/2) t^2 = softplus(-lam) is solved by t_of_lam()
    roots = sp.solve(sp.Eq(bmin * t + (bmax - bmin) * t**2 / 2, b), t)
    pos = [
        r
        for r in roots
        if is_identity(r, 2 * b / (bmin + sp.sqrt(bmin**2 + 2 * (bmax - bmin) * b)))
    ]
    out.append(
        Check(
            "VP linear: positive root of B(t) = b is 2b/(bmin + sqrt(bmin^2+2 db b))", len(pos) == 1
        )
    )
    B_of_t = bmin * t + (bmax - bmin) * t**2 / 2
    lam_of_t = -sp.log(sp.exp(B_of_t) - 1)
    out.append(
        Check(
            "VP linear: lam = -log(e^B - 1) <=> B = softplus(-lam)",
            is_identity(sp.log(1 + sp.exp(-lam_of_t)), B_of_t),
        )
    )
    d = densities()
    db = bmax - bmin
    p_vp = sigmoid(-lam) / sp.sqrt(bmin**2 + 2 * db * sp.log(1 + sp.exp(-lam)))
    out.append(Check("VP linear density", is_identity(d["vp_linear"][0], p_vp)))
    out.append(
        Check(
            "VE geometric density is 1/(2 log(smax/smin))",
            is_identity(d["ve"][0], 1 / (2 * sp.log(smax) - 2 * sp.log(smin))),
        )
    )
    out.append(
        Check(
            "EDM sampling density",
            is_identity(
                d["edm_sampling"][0],
                sp.exp(-lam / (2 * rho)) / (2 * rho * (smax ** (1 / rho) - smin ** (1 / rho))),
            ),
        )
    )
    out.append(
        Check(
            "cosine (shift s) density sech(lam/2 - s)/(2 pi)",
            is_identity(
                sp.expand(to_snr(d["cosine"][0])),
                sp.expand(to_snr(sech(lam / 2 - s) / (2 * sp.pi))),
            ),
        )
    )
    return out


def expressions() -> dict:
    """Untruncated t(λ) and p(λ) of each schedule, keyed ``t_<name>`` and ``p_<name>``."""
    out = {f"t_{k}": v for k, v in t_of_lam().items()}
    out.update({f"p_{k}": v for k, v in densities().items()})
    return out


DERIVATION = Derivation(
    name="schedule_densities",
    title="Schedule densities p(lam) = -dt/dlam",
    statement=r"VP linear: $p=\mathrm{sigmoid}(-\lambda)/\sqrt{\beta_{min}^2+2\Delta\beta\,"
    r"\mathrm{softplus}(-\lambda)}$; VE: $1/(2\log(\sigma_{max}/\sigma_{min}))$; EDM sampling: "
    r"$e^{-\lambda/(2\rho)}/(2\rho(\sigma_{max}^{1/\rho}-\sigma_{min}^{1/\rho}))$; cosine: "
    r"$\mathrm{sech}(\lambda/2-s)/(2\pi)$.",
    source="FORMULAS.md §2; Kingma & Gao 2023 App. E",
    method="sympy solve of lam(t) for t, diff, cancel",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
