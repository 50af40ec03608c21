r"""Sun & Shi eqs. 10–11 settled: $\int p\,\sigma^2$ is minimised by a point mass.

Their objective $\int p(\lambda)\sigma^2(\lambda)\,d\lambda$ subject to $\int p=1$ is *linear*
in $p$: it has no interior stationary point unless σ² is constant, and its minimum over the
simplex is the point mass at $\arg\min\sigma^2$. The classical result $p^*\propto\sigma$
needs the importance weights: the estimator $g/p$ has second moment $\int\sigma^2/p$ (plus
the squared means), whose Lagrangian gives $p\propto\sigma$ (P11 with $\omega=1$, zero means).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity

p1, p2, p3, mu = sp.symbols("p1 p2 p3 mu", positive=True)
v1, v2, v3 = sp.symbols("v1 v2 v3", positive=True)  # sigma^2 at three noise levels


def _checks() -> list[Check]:
    out = []
    obj = p1 * v1 + p2 * v2 + p3 * v3
    lagr = obj + mu * (p1 + p2 + p3 - 1)
    sol = sp.solve(
        [sp.diff(lagr, x) for x in (p1, p2, p3)] + [p1 + p2 + p3 - 1], [p1, p2, p3, mu], dict=True
    )
    out.append(Check("eq. 10 (no importance weights) has no interior stationary point", sol == []))
    vals = {v1: 3, v2: 1, v3: 2}
    corners = {
        name: obj.subs(vals).subs(pt)
        for name, pt in {
            "delta1": {p1: 1, p2: 0, p3: 0},
            "delta2": {p1: 0, p2: 1, p3: 0},
            "delta3": {p1: 0, p2: 0, p3: 1},
        }.items()
    }
    interior = obj.subs(vals).subs(
        {p1: sp.Rational(1, 3), p2: sp.Rational(1, 3), p3: sp.Rational(1, 3)}
    )
    out.append(
        Check(
            "its minimum is the point mass at argmin sigma^2",
            min(corners.values()) == corners["delta2"] == 1 and interior > 1,
            f"corners {corners}, uniform {interior}",
        )
    )
    lagr_is = v1 / p1 + v2 / p2 + v3 / p3 + mu * (p1 + p2 + p3 - 1)
    sol = sp.solve([sp.diff(lagr_is, x) for x in (p1, p2, p3)], [p1, p2, p3], dict=True)
    out.append(
        Check(
            "with importance weights, int sigma^2/p is stationary at p prop. to sigma",
            len(sol) == 1
            and is_identity(sol[0][p2] / sol[0][p1], sp.sqrt(v2 / v1))
            and is_identity(sol[0][p3] / sol[0][p1], sp.sqrt(v3 / v1)),
        )
    )
    return out


DERIVATION = Derivation(
    name="sunshi_point_mass",
    title="Sun & Shi eq. 10: int p sigma^2 is minimised by a point mass",
    statement=r"$\min_p\int p\sigma^2$ s.t. $\int p=1$ is attained by $\delta_{\arg\min\sigma^2}$ "
    r"(the objective is linear in $p$); $p^*\propto\sigma$ is the stationary point of "
    r"$\int\sigma^2/p$, the importance-weighted second moment.",
    source="Sun & Shi eqs. 9-11; FORMULAS.md §3 item 14, §5 P11",
    method="sympy solve of both Lagrangians on three noise levels; exact vertex comparison",
    kind="symbolic",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
