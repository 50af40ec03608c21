r"""The TSM identity $s^*(x_t)=\alpha^{-1}\mathbb E[\nabla\log p_0(x_0)\mid x_t]$
(De Bortoli et al. 2024; FORMULAS.md §3 item 17).

Proof by integration by parts: with $q(x_t\mid x_0)=N(x_t;\alpha x_0,\sigma^2)$,
$\partial_{x_0}q=-\alpha\,\partial_{x_t}q$, hence
$\int\partial_{x_0}p_0\,q\,dx_0=-\int p_0\,\partial_{x_0}q\,dx_0=\alpha\,\partial_{x_t}p_t$, and
dividing by $p_t$ gives the identity. Both sides are linear in $p_0$, so checking one
(unnormalised) Gaussian component $N(\mu,v)$ with symbolic $\mu, v$ proves it for every
Gaussian mixture; coordinates separate for diagonal components, so 1-D suffices for them.
Here the integral is done without ``integrate``: the Bayes factorisation
$p_0(x_0)q(x_t\mid x_0)=p_t(x_t)N(x_0;m_{post},V)$ is checked exactly, and then
$\int\partial_{x_0}p_0\,q\,dx_0=p_t\,\mathbb E_{post}[-(x_0-\mu)/v]=-p_t(m_{post}-\mu)/v$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero

alpha, sigma, v, s = sp.symbols("alpha sigma v s", positive=True)
x, x0, mu, m = sp.symbols("x x0 mu m", real=True)


def _gauss(z, mean, var):
    return sp.exp(-((z - mean) ** 2) / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def tsm_target_gaussian() -> sp.Expr:
    r"""$\alpha^{-1}\,\mathbb E[\nabla\log p_0\mid x_t]$ for $N(m,s^2)$ data, in closed form:
    $-(\mathbb E[x_0\mid x_t]-m)/(\alpha s^2)$."""
    big_s = alpha**2 * s**2 + sigma**2
    post_mean = m + alpha * s**2 / big_s * (x - alpha * m)
    return -(post_mean - m) / (alpha * s**2)


def _checks() -> list[Check]:
    out = []
    q = _gauss(x, alpha * x0, sigma**2)
    out.append(
        Check(
            "d q / d x0 = -alpha d q / d x_t",
            is_zero(sp.simplify(sp.diff(q, x0) + alpha * sp.diff(q, x))),
        )
    )
    # Bayes factorisation p0(x0) q(x_t|x0) = p_t(x_t) N(x0; m_post, V): log-difference is 0
    p0 = _gauss(x0, mu, v)
    big = alpha**2 * v + sigma**2
    pt = _gauss(x, alpha * mu, big)
    var_post = v * sigma**2 / big
    m_post = mu + alpha * v / big * (x - alpha * mu)
    post = _gauss(x0, m_post, var_post)
    logdiff = sp.expand_log(sp.log(p0) + sp.log(q) - sp.log(pt) - sp.log(post), force=True)
    out.append(
        Check(
            "p0(x0) q(x_t|x0) = p_t(x_t) N(x0; m_post, V) (one component)",
            is_zero(sp.expand(logdiff)),
        )
    )
    # hence ∫ ∂p0 q dx0 = p_t E_post[∂ log p0] = p_t (-(m_post - mu)/v): compare α ∂p_t
    lhs = pt * (-(m_post - mu) / v)
    out.append(
        Check(
            "integral of (d p0/d x0) q dx0 = alpha d p_t/d x_t (one component, "
            "hence any mixture by linearity)",
            is_zero(sp.simplify((lhs - alpha * sp.diff(pt, x)) / pt)),
        )
    )
    big_s = alpha**2 * s**2 + sigma**2
    out.append(
        Check(
            "Gaussian data: alpha^-1 E[grad log p0 | x_t] = -(x_t - alpha m)/S = s*",
            is_identity(tsm_target_gaussian(), -(x - alpha * m) / big_s),
        )
    )
    return out


def expressions() -> dict:
    """Sympy form of the Gaussian-data TSM posterior mean, for cross-checks."""
    return {"tsm_mean_gaussian": (tsm_target_gaussian(), (x, m, s, alpha, sigma))}


DERIVATION = Derivation(
    name="t_tsm_identity",
    title="TSM identity s*(x_t) = E[grad log p0(x0) | x_t] / alpha",
    statement=r"$\nabla\log p_t(x_t)=\alpha^{-1}\mathbb E[\nabla\log p_0(x_0)\mid x_t]$ for "
    r"$x_t=\alpha x_0+\sigma\varepsilon$ and any Gaussian-mixture $p_0$.",
    source="De Bortoli et al. 2024 (target score matching); FORMULAS.md §3 item 17",
    method="kernel symmetry by diff; exact Bayes factorisation of one Gaussian component "
    "(linearity)",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
