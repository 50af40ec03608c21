r"""P13: likelihood equivalences.

For any $\alpha(t),\sigma(t)$: $g^2=d\sigma^2/dt-2f\sigma^2$ with $f=d\log\alpha/dt$ equals
$-\sigma^2\,d\lambda/dt$; hence the score weight $g^2$ with $t\sim U$ is $w\equiv$ const (the
ELBO), and Song's VP importance sampling $p(t)\propto g^2/\sigma^2=-d\lambda/dt$ makes
$\lambda$ uniform.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity

t = sp.Symbol("t", real=True)
al = sp.Function("alpha", positive=True)
sg = sp.Function("sigma", positive=True)


def _checks() -> list[Check]:
    f = sp.diff(sp.log(al(t)), t)
    g2 = sp.diff(sg(t) ** 2, t) - 2 * f * sg(t) ** 2
    lam = sp.log(al(t) ** 2 / sg(t) ** 2)
    lam_exp = 2 * sp.log(al(t)) - 2 * sp.log(sg(t))
    dl = sp.diff(lam_exp, t)
    out = [
        Check(
            "lam = 2 log alpha - 2 log sigma", is_identity(sp.expand_log(lam, force=True), lam_exp)
        ),
        Check("g^2 = -sigma^2 dlam/dt (any alpha, sigma)", is_identity(g2, -(sg(t) ** 2) * dl)),
    ]
    # Song's IS: p(t) = (g^2/sigma^2) / Z = -dlam/dt / Z ; density of lam = p(t) |dt/dlam| = 1/Z
    Z = sp.Symbol("Z", positive=True)
    p_t = (g2 / sg(t) ** 2) / Z
    out.append(
        Check(
            "p(t) prop. to g^2/sigma^2 makes lam uniform: p(t)|dt/dlam| = 1/Z",
            is_identity(p_t * (-1 / dl), 1 / Z),
        )
    )
    # VE geometric: g^2 prop. to sigma^2 -> likelihood weight = Song's sigma^2 heuristic
    smin, smax = sp.symbols("sigma_min sigma_max", positive=True)
    sig_ve = smin * (smax / smin) ** t
    g2_ve = sp.diff(sig_ve**2, t)
    out.append(
        Check(
            "VE geometric: g^2 = 2 log(smax/smin) sigma^2",
            is_identity(
                sp.expand_log(g2_ve / sig_ve**2, force=True), 2 * sp.log(smax) - 2 * sp.log(smin)
            ),
        )
    )
    return out


def expressions() -> dict:
    """g^2 of the VP-linear schedule as a function of t, for ``schedules.get('vp_linear').g2``.

    From $\\lambda=-\\log(e^{B}-1)$ and $g^2=-\\sigma^2d\\lambda/dt$ (VP, untruncated,
    beta_min/beta_max symbols)."""
    bmin, bmax = sp.symbols("beta_min beta_max", positive=True)
    B = bmin * t + (bmax - bmin) * t**2 / 2
    lam = -sp.log(sp.exp(B) - 1)
    sig2 = 1 / (1 + sp.exp(lam))
    return {"vp_linear_g2": (sp.simplify(-sig2 * sp.diff(lam, t)), (t, bmin, bmax))}


DERIVATION = Derivation(
    name="p13_likelihood",
    title="P13 g^2 = -sigma^2 dlam/dt; likelihood weighting = ELBO; Song IS = lam uniform",
    statement=r"$g^2=-\sigma^2\,d\lambda/dt$ for any $(\alpha,\sigma)$; $\Lambda=g^2$ gives "
    r"$w\equiv$ const; $p(t)\propto g^2/\sigma^2$ is $\lambda\sim$ Uniform; VE geometric has "
    r"$g^2\propto\sigma^2$.",
    source="Song et al. 2021 (2101.09258); FORMULAS.md §1, §3 item 1, §5 P13",
    method="sympy with generic functions alpha(t), sigma(t); cancel",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
