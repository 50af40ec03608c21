r"""External anchor: the symmetric bimodal mixture under VE noise is the binary-input
Gaussian channel (Guo, Shamai & Verdú 2005; FORMULAS.md §8). Derived here; numeric.

For $p_0=\tfrac12N(-\mu,s^2)+\tfrac12N(\mu,s^2)$ and $x_t=x_0+\sigma\varepsilon$, $x_t$ is
distributed as $\mu B+\sqrt vZ$ with $B=\pm1$ equiprobable, $v=s^2+\sigma^2$. With
$g=\mu^2/v$ and $Y=x_t/\sqrt v=\sqrt gB+Z$ (the channel at SNR $g$):

* score: $s_t(x)=-x/v+(\mu/v)\tanh(\mu x/v)$, and $\mathbb E[B\mid Y]=\tanh(\sqrt gY)$;
* $\mathrm{mmse}_B(g)=\mathbb E(B-\tanh\sqrt gY)^2=1-\mathbb E[B\tanh\sqrt gY]
  =1-\mathbb E\tanh(g+\sqrt gZ)=1-\mathbb E\tanh(g-\sqrt gZ)$
  (orthogonality $\mathbb E[B\hat B]=\mathbb E\hat B^2$, then symmetry in $B$ and $Z$);
* P12 for the signal $\mu B$ in Gaussian noise of variance $v$:
  $\mathrm{tr}\,I_t=1/v-\mu^2\mathrm{mmse}_B(g)/v^2$, i.e.

$$\mathrm{tr}\,I_t=\frac{1-g\,\mathrm{mmse}_B(g)}{v}\qquad\text{(FORMULAS.md §8 is right).}$$

The I-MMSE relation ties it to the channel's mutual information
$I(g)=g-\mathbb E\log\cosh(g+\sqrt gZ)$ (nats): $dI/dg=\mathrm{mmse}_B(g)/2$.

Numeric part: $\mathrm{tr}\,I_t$ by the independent mixture quadrature of
:mod:`dsmtheory.derivations._quadrature` against the formula, with $\mathrm{mmse}_B$ by
``scipy.integrate.quad`` over $Z$ (rtol 1e-10), on a panel of $(\mu,s,\sigma)$ that includes
``bimodal_1d``'s defaults and a pure binary source ($s=0$); $dI/dg$ by central differences
(step 1e-4, tolerance 1e-7) and $I(g)$ against $h(Y)-h(Z)$ by quadrature (1e-9).
"""

from __future__ import annotations

import math

import sympy as sp
from scipy.integrate import quad

from ._base import Check, Derivation, close, is_zero
from ._quadrature import Mixture, expect

RTOL = 1e-10  # two quadratures (cubature rtol 1e-11, quad epsrel 1e-12) of smooth integrands
FD_TOL = 1e-7  # central difference, step 1e-4: truncation ~ h^2 I''' ~ 1e-8
MI_TOL = 1e-9

PANEL = (  # (mu, s, sigma)
    (2.0, 0.25, 0.1),
    (2.0, 0.25, 0.5),
    (2.0, 0.25, 2.0),
    (1.0, 0.5, 1.0),
    (1.0, 0.0, 0.3),
    (1.0, 0.0, 3.0),
)


def _gauss(f) -> float:
    """E f(Z), Z ~ N(0, 1), by adaptive quadrature."""
    val, _ = quad(
        lambda z: f(z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
        -40,
        40,
        epsabs=0,
        epsrel=1e-12,
        limit=400,
        points=[0.0],
    )
    return val


def mmse_binary(g: float) -> float:
    r"""$\mathrm{mmse}_B(g)=1-\mathbb E\tanh(g-\sqrt gZ)$."""
    return 1.0 - _gauss(lambda z: math.tanh(g - math.sqrt(g) * z))


def fisher_formula(mu: float, s: float, sigma: float) -> float:
    r"""$(1-g\,\mathrm{mmse}_B(g))/v$."""
    v = s**2 + sigma**2
    g = mu**2 / v
    return (1.0 - g * mmse_binary(g)) / v


def fisher_quadrature(mu: float, s: float, sigma: float) -> float:
    r"""$\mathbb E\|s_t\|^2$ of the noised mixture by the independent cubature."""
    mix = Mixture.of([0.5, 0.5], [[-mu], [mu]], [[[s**2]], [[s**2]]])
    (val,) = expect(mix, sigma, lambda y, pw: sigma**2 * (pw.score**2).sum(-1)[:, None])
    return float(val) / sigma**2


def mutual_information(g: float) -> float:
    r"""$I(g)=g-\mathbb E\log\cosh(g+\sqrt gZ)$ in nats (stable log cosh)."""

    def logcosh(a):
        a = abs(a)
        return a + math.log1p(math.exp(-2 * a)) - math.log(2.0)

    return g - _gauss(lambda z: logcosh(g + math.sqrt(g) * z))


def mutual_information_direct(g: float) -> float:
    r"""$h(Y)-h(Z)$ for $Y=\sqrt gB+Z$, by quadrature of $-\int p\log p$."""
    a = math.sqrt(g)

    def neg_plogp(y):
        la = -0.5 * (y - a) ** 2
        lb = -0.5 * (y + a) ** 2
        mx = max(la, lb)
        lp = (
            mx
            + math.log(0.5 * (math.exp(la - mx) + math.exp(lb - mx)))
            - 0.5 * math.log(2 * math.pi)
        )
        return -math.exp(lp) * lp

    h_y, _ = quad(neg_plogp, -a - 40, a + 40, epsabs=0, epsrel=1e-13, limit=400, points=[-a, a])
    return h_y - 0.5 * math.log(2 * math.pi * math.e)


def _checks() -> list[Check]:
    out = []
    x, mu, v, y, g = sp.symbols("x mu v y g", positive=True)
    pt = sp.exp(-((x - mu) ** 2) / (2 * v)) + sp.exp(-((x + mu) ** 2) / (2 * v))
    score = sp.diff(pt, x) / pt
    out.append(
        Check(
            "score of (N(-mu, v) + N(mu, v))/2 = -x/v + (mu/v) tanh(mu x/v)",
            is_zero(sp.simplify((score - (-x / v + mu / v * sp.tanh(mu * x / v))).rewrite(sp.exp))),
        )
    )
    lik = {b: sp.exp(-((y - b * sp.sqrt(g)) ** 2) / 2) for b in (1, -1)}
    post_mean = (lik[1] - lik[-1]) / (lik[1] + lik[-1])
    out.append(
        Check(
            "E[B | Y] = tanh(sqrt(g) Y) for Y = sqrt(g) B + Z",
            is_zero(sp.simplify((post_mean - sp.tanh(sp.sqrt(g) * y)).rewrite(sp.exp))),
        )
    )
    mb = sp.Symbol("mmse_B", positive=True)
    out.append(
        Check(
            "P12 with signal mu B, noise variance v: 1/v - mu^2 mmse_B/v^2 = (1 - g mmse_B)/v",
            is_zero(sp.simplify((1 / v - mu**2 * mb / v**2 - (1 - g * mb) / v).subs(g, mu**2 / v))),
        )
    )
    rows = [(p, fisher_quadrature(*p), fisher_formula(*p)) for p in PANEL]
    worst = max(abs(a / b - 1) for _, a, b in rows)
    out.append(
        Check(
            "quadrature tr I_t = (1 - g mmse_B(g))/v on the panel",
            all(close(a, b, RTOL) for _, a, b in rows),
            "max relative difference "
            f"{worst:.1e}, e.g. (mu, s, sigma) = {rows[1][0]}: {rows[1][1]:.12g}",
        )
    )
    gs = (0.1, 1.0, 4.0)
    step = 1e-4
    deriv = [(mutual_information(q + step) - mutual_information(q - step)) / (2 * step) for q in gs]
    half = [0.5 * mmse_binary(q) for q in gs]
    out.append(
        Check(
            "I-MMSE: dI/dg = mmse_B(g)/2 at g = 0.1, 1, 4",
            all(abs(a - b) <= FD_TOL for a, b in zip(deriv, half, strict=True)),
            ", ".join(f"{a:.9f} vs {b:.9f}" for a, b in zip(deriv, half, strict=True)),
        )
    )
    i1, i2 = mutual_information(1.0), mutual_information_direct(1.0)
    out.append(
        Check(
            "I(g) = g - E log cosh(g + sqrt(g) Z) equals h(Y) - h(Z) at g = 1",
            abs(i1 - i2) <= MI_TOL,
            f"{i1:.12f} vs {i2:.12f} nats",
        )
    )
    return out


DERIVATION = Derivation(
    name="bimodal_channel_anchor",
    title="Bimodal mixture = binary-input Gaussian channel: tr I_t = (1 - g mmse_B(g))/v",
    statement=r"For $p_0=\tfrac12N(\pm\mu,s^2)$ under VE noise, $v=s^2+\sigma^2$, "
    r"$g=\mu^2/v$: $\mathrm{tr}I_t=(1-g\,\mathrm{mmse}_B(g))/v$ with "
    r"$\mathrm{mmse}_B(g)=1-\mathbb E\tanh(g-\sqrt gZ)$, and $dI/dg=\mathrm{mmse}_B/2$.",
    source="Guo, Shamai & Verdú 2005 (I-MMSE); FORMULAS.md §8 (external anchor)",
    method="sympy score and posterior mean; P12 algebra; independent cubature of tr I_t vs "
    "the formula with scipy quad (rtol 1e-10) on 6 (mu, s, sigma); I-MMSE by central "
    "differences (1e-7); I(g) vs h(Y) - h(Z) (1e-9)",
    kind="numeric",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
