r"""P10: a constant multiplier $c$ in $\Lambda=c\,\sigma_t^2$ changes nothing that matters.

The argmin is unchanged; SGD with loss $cL$ and rate $\eta$ equals SGD with rate $\eta c$ (mean
gradient × c, covariance × c², gradient SNR unchanged); Adam's update
$\hat m/(\sqrt{\hat v}+\epsilon)$ becomes $\hat m/(\sqrt{\hat v}+\epsilon/c)$. A time-varying
$c(t)$ is *not* invariant: it moves the finite-capacity optimum.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero

theta, eta, c, eps = sp.symbols("theta eta c epsilon", positive=True)
m, vv = sp.symbols("m v", positive=True)
a, b = sp.symbols("a b", real=True)
c1, c2 = sp.symbols("c1 c2", positive=True)


def _checks() -> list[Check]:
    L = sp.Function("L")
    out = []
    grad_c = sp.diff(c * L(theta), theta)
    out.append(
        Check(
            "grad(cL) = c grad L: same stationary points",
            is_identity(grad_c, c * sp.diff(L(theta), theta)),
        )
    )
    sgd_c = theta - eta * grad_c
    sgd_lr = theta - (eta * c) * sp.diff(L(theta), theta)
    out.append(
        Check("SGD on cL with rate eta = SGD on L with rate eta c", is_identity(sgd_c, sgd_lr))
    )
    mu, var = sp.symbols("mu var", positive=True)
    out.append(
        Check(
            "gradient SNR mean/std unchanged",
            is_identity((c * mu) / sp.sqrt(c**2 * var), mu / sp.sqrt(var)),
        )
    )
    adam_c = (c * m) / (sp.sqrt(c**2 * vv) + eps)
    out.append(
        Check(
            "Adam: c m/(sqrt(c^2 v)+eps) = m/(sqrt(v)+eps/c)",
            is_identity(adam_c, m / (sp.sqrt(vv) + eps / c)),
        )
    )
    # time-varying c: two noise levels pulling a scalar theta to a and b
    x = sp.Symbol("x", real=True)
    th_star = sp.solve(sp.diff(c1 * (x - a) ** 2 + c2 * (x - b) ** 2, x), x)[0]
    dep = sp.factor(sp.diff(th_star, c1))
    out.append(
        Check(
            "time-varying c(t) moves the optimum: d theta*/d c1 = c2(a-b)/(c1+c2)^2",
            is_identity(dep, c2 * (a - b) / (c1 + c2) ** 2) and not is_zero(dep),
        )
    )
    return out


DERIVATION = Derivation(
    name="p10_constant_c",
    title="P10 a constant c is a learning-rate (SGD) or epsilon (Adam) rescaling",
    statement=r"With $\Lambda=c\sigma_t^2$: same argmin; SGD equals rate $\eta c$; gradient SNR "
    r"unchanged; Adam $\hat m/(\sqrt{\hat v}+\epsilon)\to\hat m/(\sqrt{\hat v}+\epsilon/c)$; a "
    r"time-varying $c(t)$ moves the optimum.",
    source="FORMULAS.md §5 P10, §6 (b); smoothed-KL paper (remark after Prop. 3.3)",
    method="sympy with a generic loss function, cancel; solve for a two-level counterexample",
    kind="symbolic",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
