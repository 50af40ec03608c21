r"""The within-component bound on $c^*$ (FORMULAS.md §8; issue 14 item 3). Derived here.

By the law of total variance over the component label (:mod:`deff_separated_limit`),
$\mathrm{Cov}(x_0\mid x_t)\succeq\sum_kr_kV_k$ with $V_k$ constant and
$\mathbb E\,r_k=\pi_k$; $V_k$ has eigenvalues $e_{ki}\tilde\sigma^2/(e_{ki}+\tilde\sigma^2)$
(:mod:`deff_gaussian`). Hence

$$\mathrm{mmse}=W+B,\quad W=\sum_k\pi_k\sum_i\frac{e_{ki}\tilde\sigma^2}{e_{ki}+\tilde\sigma^2},
\quad0\le B\le\tfrac12\sum_{j<l}\sqrt{\pi_j\pi_l}\int\sqrt{p_jp_l}\,\|m_j-m_l\|^2,$$

$$c^*=\frac{D\tilde\sigma^2}{\mathrm{mmse}}\ \le\ c_{\rm within}
=\frac{D}{\sum_k\pi_k\sum_ie_{ki}/(e_{ki}+\tilde\sigma^2)},\qquad
\frac{c_{\rm within}-c^*}{c^*}=\frac BW,$$

so the bound is exact up to the pairwise Bhattacharyya overlap of the noised components:
equality in the limit where components do not overlap, and exponentially close to it before.

Numeric part: a 2-D mixture of three anisotropic components (one thin, $e_{\min}=0.002$),
separated by ≥ 5, at $\tilde\sigma$ from 0.01 to 3. The mmse is computed by the
independent quadrature of :mod:`dsmtheory.derivations._quadrature` in the Fisher form
$\tilde\sigma^2(D-\tilde\sigma^2\mathbb E\|s\|^2)$ (which does not use the decomposition),
and the Bhattacharyya integral in closed form: the bound holds at every $\tilde\sigma$, the gap
lies under the Bhattacharyya bound, and $c_{\rm within}/c^*-1\le10^{-8}$ for
$\tilde\sigma\le0.1$.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Check, Derivation, is_identity
from ._quadrature import Mixture, expect
from .deff_separated_limit import amgm_checks, total_variance_checks

SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
QUAD_RTOL = 1e-9  # mmse from the cubature at rtol 1e-11 (two forms agree to ~1e-14)
NEAR_EQUAL = 1e-8  # c_within/c* - 1 for sigma~ <= 0.1 on this mixture (observed <= 7e-10)

MIXTURE = Mixture.of(
    [0.5, 0.3, 0.2],
    [[0.0, 0.0], [5.0, 0.5], [0.5, 5.0]],
    [
        [[0.30, 0.12], [0.12, 0.10]],
        [[0.05, 0.0], [0.0, 0.20]],
        [[0.25, 0.0], [0.0, 0.002]],  # thin: behaves as a line until sigma~ ~ 0.045
    ],
)


def within(mix: Mixture, sigma: float) -> float:
    r"""$W=\sum_k\pi_k\sum_ie_{ki}\tilde\sigma^2/(e_{ki}+\tilde\sigma^2)$."""
    s2 = sigma**2
    return float(sum(c.weight * np.sum(c.eigvals * s2 / (c.eigvals + s2)) for c in mix.components))


def c_within(mix: Mixture, sigma: float) -> float:
    r"""$c_{\rm within}=D\tilde\sigma^2/W$."""
    return mix.dim * sigma**2 / within(mix, sigma)


def bhattacharyya_bound(mix: Mixture, sigma: float) -> float:
    r"""$\tfrac12\sum_{j<l}\sqrt{\pi_j\pi_l}\int\sqrt{p_jp_l}\|m_j-m_l\|^2$ in closed form:
    $\sqrt{p_jp_l}=\mathrm{BC}_{jl}N(c,C)$ with $C^{-1}=\tfrac12(S_j^{-1}+S_l^{-1})$,
    $c=\tfrac12C(S_j^{-1}\mu_j+S_l^{-1}\mu_l)$, and $m_j-m_l=Mx+b$ affine, so the integral
    is $\mathrm{BC}_{jl}(\|Mc+b\|^2+\mathrm{tr}\,MCM^\top)$."""
    comps = mix.components
    d = mix.dim
    parts = []
    for c in comps:
        cov = (c.eigvecs * c.eigvals) @ c.eigvecs.T
        s = cov + sigma**2 * np.eye(d)
        si = np.linalg.inv(s)
        a = cov @ si  # m = mu + A (x - mu) = A x + (I - A) mu
        parts.append((c.weight, c.mean, s, si, a, (np.eye(d) - a) @ c.mean))
    total = 0.0
    for j in range(len(parts)):
        for k in range(j + 1, len(parts)):
            wj, mj, sj, sij, aj, bj = parts[j]
            wk, mk, sk, sik, ak, bk = parts[k]
            cc = np.linalg.inv(0.5 * (sij + sik))
            centre = 0.5 * cc @ (sij @ mj + sik @ mk)
            p = 0.5 * (sj + sk)
            dm = mj - mk
            _, ld_p = np.linalg.slogdet(p)
            _, ld_j = np.linalg.slogdet(sj)
            _, ld_k = np.linalg.slogdet(sk)
            bc = np.exp(-dm @ np.linalg.solve(p, dm) / 8 - 0.5 * ld_p + 0.25 * (ld_j + ld_k))
            mm, bb = aj - ak, bj - bk
            r = mm @ centre + bb
            total += 0.5 * np.sqrt(wj * wk) * bc * (r @ r + np.trace(mm @ cc @ mm.T))
    return float(total)


def mmse_fisher_form(mix: Mixture, sigma: float) -> float:
    r"""$\mathrm{mmse}=\tilde\sigma^2(D-\tilde\sigma^2\mathbb E\|s\|^2)$ by quadrature."""
    (val,) = expect(mix, sigma, lambda y, pw: sigma**2 * (pw.score**2).sum(-1)[:, None])
    return sigma**2 * (mix.dim - float(val))


def _checks() -> list[Check]:
    out = total_variance_checks() + amgm_checks()
    dd, st, w, b = sp.symbols("D sigma_tilde W B", positive=True)
    out.append(
        Check(
            "c_within - c* = D st^2/W - D st^2/(W+B) = D st^2 B/(W(W+B)) >= 0, "
            "and (c_within - c*)/c* = B/W",
            is_identity(dd * st**2 / w - dd * st**2 / (w + b), dd * st**2 * b / (w * (w + b)))
            and is_identity((dd * st**2 / w) / (dd * st**2 / (w + b)) - 1, b / w),
        )
    )
    rows = []
    for s in SIGMAS:
        m = mmse_fisher_form(MIXTURE, s)
        wv = within(MIXTURE, s)
        rows.append((s, m, wv, bhattacharyya_bound(MIXTURE, s)))
    bound_ok = all(m >= wv * (1 - QUAD_RTOL) for _, m, wv, _ in rows)
    under = all(m - wv <= bb * (1 + QUAD_RTOL) + QUAD_RTOL * m for _, m, wv, bb in rows)
    ratios = [c_within(MIXTURE, s) / (MIXTURE.dim * s**2 / m) - 1 for s, m, _, _ in rows]
    near = all(r <= NEAR_EQUAL for (s, *_), r in zip(rows, ratios, strict=True) if s <= 0.1)
    note = ", ".join(f"{s:g}: {r:.2e}" for s, r in zip(SIGMAS, ratios, strict=True))
    out += [
        Check("quadrature: mmse >= W at every sigma~ (c* <= c_within)", bound_ok),
        Check(
            "quadrature: mmse - W <= Bhattacharyya bound at every sigma~",
            under,
            ", ".join(f"{s:g}: gap {m - wv:.2e} <= {bb:.2e}" for s, m, wv, bb in rows),
        ),
        Check(
            f"near equality: c_within/c* - 1 <= {NEAR_EQUAL:g} for sigma~ <= 0.1",
            near,
            f"c_within/c* - 1 at sigma~ {note}",
        ),
    ]
    return out


def expressions() -> dict:
    """c_within for a mixture of two 2-D components with eigenvalues (a1, a2), (b1, b2) and
    weights (p, 1 - p), for the cross-check against ``optimal.homoskedastic_multiplier``."""
    st = sp.Symbol("sigma_tilde", positive=True)
    a1, a2, b1, b2, p = sp.symbols("a1 a2 b1 b2 p", positive=True)
    d_w = p * (a1 / (a1 + st**2) + a2 / (a2 + st**2)) + (1 - p) * (
        b1 / (b1 + st**2) + b2 / (b2 + st**2)
    )
    return {"c_within_2x2": (2 / d_w, (st, a1, a2, b1, b2, p))}


DERIVATION = Derivation(
    name="within_component_bound",
    title="Within-component bound c_star <= c_within, exact up to the components' overlap",
    statement=r"$\mathrm{mmse}\ge\sum_k\pi_k\sum_i\frac{e_{ki}\tilde\sigma^2}{e_{ki}+"
    r"\tilde\sigma^2}$, so $c^*\le c_{\rm within}=D/\sum_k\pi_k\sum_i\frac{e_{ki}}{e_{ki}+"
    r"\tilde\sigma^2}$, with $c_{\rm within}/c^*-1=B/W$ and $B$ at most the pairwise "
    r"Bhattacharyya overlap $\tfrac12\sum_{j<l}\sqrt{\pi_j\pi_l}\int\sqrt{p_jp_l}"
    r"\|m_j-m_l\|^2$: equality when the components do not overlap.",
    source="Derived (FORMULAS.md §4, §8; issue 14 item 3)",
    method="sympy: law of total variance, E r_k = pi_k, AM-GM, the c* algebra; numeric: "
    "independent cubature of the Fisher-form mmse on a separated 2-D mixture at 6 noise "
    "levels against W and the closed-form Bhattacharyya bound "
    "(rtol 1e-9)",
    kind="numeric",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
