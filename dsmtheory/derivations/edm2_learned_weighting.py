r"""EDM2's learned loss weighting is the homoskedastic optimum $c^*(t)\sigma_t^2$, and
loss-based estimates of $c^*$ are biased low by the model's Fisher divergence (Karras et al.
2024, *Analyzing and Improving the Training Dynamics of Diffusion Models*, eq. 21;
FORMULAS.md §1, §8; issue 15 item 1). Derived here.

**The loss.** EDM2 trains on $\frac{w(\sigma)}{e^{u(\sigma)}}\|D_\theta-y\|^2+c\,u(\sigma)$
with a learned log-variance $u$. In NVlabs/edm2 ``training/training_loop.py`` the term is
per element — ``(weight / logvar.exp()) * (denoised - images)**2 + logvar``, summed over the
$D$ elements — so $c=D$; FORMULAS.md §8 writes $c=1$. Per σ (a free function $u(\sigma)$ is
minimised pointwise), with $m=\mathbb E\|D_\theta-y\|^2$:

$$u^*=\log\frac{w\,m}{c},\qquad\frac{w}{e^{u^*}}=\frac cm,\qquad
\frac{d}{d\theta}\min_u\ell=\frac cm\frac{dm}{d\theta}\ \text{(envelope theorem)}:$$

the effective $x_0$-space weight is $c/\mathbb E\|D_\theta-y\|^2$, and $w(\sigma)$ drops out
(for $c=D$ and $x_0\sim N(0,\sigma_d^2I)$, EDM's $w=1/c_{out}^2$ gives $u^*\equiv0$).

**Every parameterization.** For a prediction $a$ with $\|a-\hat a\|^2=\kappa_a\|\varepsilon-
\hat\varepsilon\|^2$ (FORMULAS.md §1), the same loss on $a$ gives the ε-space multiplier
$\omega_\varepsilon=\kappa_a\,c/(\kappa_aL_\varepsilon)=c/L_\varepsilon$,
$L_\varepsilon=\mathbb E\|\varepsilon-\hat\varepsilon\|^2$: $\kappa_a$ cancels, for ε, $x_0$,
v, score and F, VE and VP. At the Bayes denoiser $L_\varepsilon=d_{\rm eff}=D/c^*$
(:mod:`deff_gaussian`), so $\omega_\varepsilon=(c/D)\,c^*$, the score-space weight is
$\Lambda=\omega_\varepsilon\sigma^2=(c/D)\,c^*(t)\,\sigma_t^2$ and the $x_0$-space one
$c/\mathrm{mmse}$.

**A non-optimal model.** $\mathbb E\|D_\theta-y\|^2=\mathrm{mmse}+\mathbb E\|D_\theta-
\mathbb E[y|x_t]\|^2$: the cross term vanishes because $\mathbb E[\mathbb E[y|x_t]-y\mid x_t]=0$.
For a denoiser from a score model, $D_\theta=(x_t+\sigma^2s_\theta)/\alpha$ (Tweedie), the
model term is $\frac{\sigma^4}{\alpha^2}\mathrm{FD}_t=\tilde\sigma^4\,\mathrm{FD}_{\tilde x}$:
$\tilde\sigma^4$ times the Fisher divergence $\mathbb E\|s_\theta-s^*\|^2$ only in the
VE-equivalent coordinates $\tilde x=x_t/\alpha$ (scores scale by α); in $x_t$ coordinates the
factor is $\sigma^4/\alpha^2=\tilde\sigma^4\alpha^2$. In ε units,
$L_\varepsilon=d_{\rm eff}+\sigma^2\mathrm{FD}_t$, so every loss-based estimate
$\hat c^*=D/L_\varepsilon=D\tilde\sigma^2/\widehat{\mathrm{mse}}$ (EDM2's $e^{-u}$, the online
estimator, the offline one) is $c^*\,d_{\rm eff}/(d_{\rm eff}+\sigma^2\mathrm{FD}_t)\le c^*$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero
from ._common import lam, sigma_data, sigmoid, to_snr
from .high_noise_limit import pythagoras_holds
from .kappa_edm import expressions as kappa_edm_expr
from .kappa_score import expressions as kappa_score_expr
from .kappa_v import expressions as kappa_v_expr
from .kappa_x0 import expressions as kappa_x0_expr

uu = sp.Symbol("u", real=True)
w, mm, c, L = sp.symbols("w m c L_eps", positive=True)
D = sp.Symbol("D", positive=True, integer=True)
theta = sp.Symbol("theta", real=True)


def kappas() -> dict[str, sp.Expr]:
    """kappa_a(lam) per (parameterization, process), from the kappa_* derivations."""
    kx = kappa_x0_expr()["kappa_x0"][0]
    ks = kappa_score_expr()
    kv = kappa_v_expr()
    kf = kappa_edm_expr()["kappa_edm"][0]
    return {
        "eps (VE, VP)": sp.Integer(1),
        "x0 (VE, VP)": kx,
        "score VE": ks["kappa_score_ve"][0],
        "score VP": ks["kappa_score_vp"][0],
        "v VE": kv["kappa_v_ve"][0],
        "v VP": kv["kappa_v_vp"][0],
        "F (VE, VP)": kf,
    }


def learned_multiplier(loss_scale: sp.Expr) -> sp.Expr:
    r"""$w e^{-u^*}$ for the loss $\frac{w}{e^u}\,\mathrm{loss\_scale}+cu$ (the stationary
    point, which is the minimum)."""
    ell = w * sp.exp(-uu) * loss_scale + c * uu
    (u_star,) = sp.solve(sp.diff(ell, uu), uu)
    return sp.simplify(w * sp.exp(-u_star))


def _checks() -> list[Check]:
    out = []
    ell = w * sp.exp(-uu) * mm + c * uu
    (u_star,) = sp.solve(sp.diff(ell, uu), uu)
    out.append(
        Check(
            "u* = log(w m/c) is the unique minimum (l'' = w m e^-u > 0), and w e^-u* = c/m",
            is_identity(u_star, sp.log(w * mm / c))
            and is_identity(sp.diff(ell, uu, 2), w * mm * sp.exp(-uu))
            and is_identity(w * sp.exp(-u_star), c / mm),
        )
    )
    mf = sp.Function("m", positive=True)(theta)
    u_th = sp.log(w * mf / c)
    total = sp.diff((w * sp.exp(-uu) * mf + c * uu).subs(uu, u_th), theta)
    out.append(
        Check(
            "envelope: d/dtheta min_u l = (c/m) dm/dtheta",
            is_zero(sp.simplify(total - c / mf * sp.diff(mf, theta))),
        )
    )
    # every parameterization: the eps-space multiplier is c / L_eps
    omegas = {name: learned_multiplier(k * L) * k for name, k in kappas().items()}
    out.append(
        Check(
            "loss on a with |a - a_hat|^2 = kappa_a |eps - eps_hat|^2: omega_eps = c/L_eps for "
            + ", ".join(kappas()),
            all(is_identity(to_snr(om), c / L) for om in omegas.values()),
        )
    )
    # at the Bayes denoiser: L_eps = d_eff = D/c*
    cs = sp.Symbol("c_star", positive=True)
    om_eps = (c / L).subs(L, D / cs)
    sig2 = {"VE": sp.exp(-lam), "VP": sigmoid(-lam)}
    ks = kappa_score_expr()
    score_ok = all(
        is_identity(to_snr(om_eps / ks[f"kappa_score_{p.lower()}"][0]), to_snr(c / D * cs * s2))
        for p, s2 in sig2.items()
    )
    out.append(
        Check(
            "Bayes denoiser: omega_eps = (c/D) c*, score-space Lambda = (c/D) c* sigma_t^2 "
            "(VE and VP), x0-space weight = c/mmse with mmse = e^-lam d_eff",
            is_identity(om_eps, c * cs / D)
            and score_ok
            and is_identity(
                to_snr(om_eps / kappa_x0_expr()["kappa_x0"][0]),
                to_snr(c / (sp.exp(-lam) * D / cs)),
            ),
        )
    )
    # EDM2's per-element loss (c = D), EDM's weight, Gaussian data with sigma_d: u* = 0
    st = sp.Symbol("sigma_tilde", positive=True)
    w_edm = (st**2 + sigma_data**2) / (st * sigma_data) ** 2
    mmse_g = D * st**2 * sigma_data**2 / (st**2 + sigma_data**2)
    out.append(
        Check(
            "c = D, w = 1/c_out^2, x0 ~ N(0, sigma_d^2 I): e^u* = w mmse/D = 1, u* = 0",
            is_identity(w_edm * mmse_g / D, 1),
        )
    )
    # a non-optimal model: the cross term vanishes
    out.append(
        Check(
            "E|D - y|^2 = E|E[y|x] - y|^2 + E|D - E[y|x]|^2 (cross term 0, finite joint law)",
            pythagoras_holds(),
        )
    )
    # Tweedie: model error = sigma^4/alpha^2 FD_t = st^4 FD in x~ = x_t/alpha coordinates
    alpha, sigma = sp.symbols("alpha sigma", positive=True)
    ds = sp.Symbol("delta_s", real=True)  # s_theta - s* at a point (x_t coordinates)
    d_err = (sigma**2 * ds / alpha) ** 2  # ((x + sigma^2 s_theta)/alpha - (x + sigma^2 s*)/alpha)^2
    out.append(
        Check(
            "D_theta - D* = (sigma^2/alpha)(s_theta - s*): error sigma^4/alpha^2 FD_t "
            "= st^4 FD_x~ (score in x~ = alpha score in x_t)",
            is_identity(d_err, sigma**4 / alpha**2 * ds**2)
            and is_identity(d_err, (sigma / alpha) ** 4 * (alpha * ds) ** 2),
        )
    )
    # end to end for x0 ~ N(m, s^2), model score -(x - b)/v (FORMULAS.md §4 single Gaussian)
    m0, b = sp.symbols("m b", real=True)
    s, v = sp.symbols("s v", positive=True)
    za, ze = sp.symbols("z_a z_e", real=True)
    x0 = m0 + s * za
    xt = alpha * x0 + sigma * ze
    den = (xt + sigma**2 * (-(xt - b) / v)) / alpha
    sq = sp.Poly(sp.expand((den - x0) ** 2), za, ze)
    gauss = {(0, 0): 1, (1, 0): 0, (0, 1): 0, (2, 0): 1, (0, 2): 1, (1, 1): 0}
    mse = sum(coef * gauss[mon] for mon, coef in sq.terms())
    S = alpha**2 * s**2 + sigma**2
    fd = S * (1 / S - 1 / v) ** 2 + (b - alpha * m0) ** 2 / v**2
    out.append(
        Check(
            "N(m, s^2) data, affine score model: E(D_theta - x0)^2 = mmse + sigma^4/alpha^2 FD_t",
            is_identity(mse, s**2 * sigma**2 / S + sigma**4 / alpha**2 * fd),
        )
    )
    # bias of c*-from-loss
    d, F = sp.symbols("d_eff FD_t", positive=True)
    st_ = sigma / alpha
    c_hat = D * st_**2 / (st_**2 * d + st_**4 * alpha**2 * F)
    out.append(
        Check(
            "c*_hat = D st^2/(mmse + st^4 alpha^2 FD_t) = D/(d_eff + sigma^2 FD_t) "
            "= c* d_eff/(d_eff + sigma^2 FD_t) <= c*",
            is_identity(c_hat, D / (d + sigma**2 * F))
            and is_identity(c_hat, (D / d) * d / (d + sigma**2 * F))
            and is_identity(D / d - c_hat, D * sigma**2 * F / (d * (d + sigma**2 * F))),
        )
    )
    return out


def expressions() -> dict:
    """The effective eps-space multiplier (c/D) c* of the learned weighting at the Bayes
    denoiser, and EDM2's optimal log-variance log(w m/c)."""
    cs = sp.Symbol("c_star", positive=True)
    return {
        "omega_eps_learned": (c * cs / D, (c, cs, D)),
        "u_star": (sp.log(w * mm / c), (w, mm, c)),
    }


DERIVATION = Derivation(
    name="edm2_learned_weighting",
    title="EDM2's learned weighting is c_star(t) sigma_t^2 in every parameterization, and "
    "loss-based c_star is biased low",
    statement=r"For $\frac{w}{e^u}\|D_\theta-y\|^2+cu$ ($c=D$ in EDM2's per-element code): "
    r"$e^{u^*}=w\,\mathbb E\|D_\theta-y\|^2/c$, effective ε-space multiplier "
    r"$c/\mathbb E\|\varepsilon-\hat\varepsilon\|^2$ whatever the parameterization (ε, $x_0$, "
    r"v, score, F; VE, VP), $=(c/D)\,c^*$ at the Bayes denoiser, i.e. "
    r"$\Lambda\propto c^*\sigma_t^2$; "
    r"$\mathbb E\|D_\theta-y\|^2=\mathrm{mmse}+\tfrac{\sigma^4}{\alpha^2}\mathrm{FD}_t$, so "
    r"$\hat c^*=c^*d_{\rm eff}/(d_{\rm eff}+\sigma^2\mathrm{FD}_t)\le c^*$.",
    source="Karras et al. 2024 (EDM2, eq. 21; NVlabs/edm2 training_loop.py); FORMULAS.md §1, "
    "§8; issue 15 item 1",
    method="sympy solve/diff of the uncertainty loss; the kappa_a of the kappa_* derivations; "
    "orthogonality on a finite joint law; Gaussian expectation of an affine model's error",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
