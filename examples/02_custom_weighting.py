r"""Define your own loss weighting, register it, convert it, and prove a property of it.

The weighting built here is a *power-mean Min-SNR*: a smooth clip of the x-space weight
SNR at gamma with sharpness n,

    omega_eps(lam) = (1 + (SNR / gamma)^n)^(-1/n),     SNR = e^lam.

n = 1 is Soft-Min-SNR with sigma_d^2 = 1/gamma (k-diffusion / HDiT); n -> infinity is
Min-SNR-gamma, min(1, gamma / SNR). The script

1. registers it in the weighting registry (``dsm.weightings.register``) and builds it
   with ``dsm.weightings.get`` like any catalog entry;
2. evaluates omega_eps and Kingma & Gao's total weight w = p(lam) omega_eps under the
   cosine schedule (and its integral);
3. converts it to the multipliers to put on an x0-MSE and a v-MSE
   (``dsm.parameterization.from_eps_multiplier``);
4. proves with sympy, through the derivations framework (a ``Derivation`` with
   ``kind="symbolic"``), that SNR * omega_eps -> gamma as lam -> +inf (the Min-SNR tail),
   omega_eps -> 1 as lam -> -inf, and that n = 1 equals the registry's ``soft_min_snr``
   (sigma_d^2 = 1/gamma) and gamma * ``p2`` (k = gamma, exponent 1);
5. lambdifies the sympy expression and compares it with the registered JAX weighting at
   random lam.

The proof's result and the measured differences are written as JSON to --out (default
out/examples/).

Run: python examples/02_custom_weighting.py    (DSM_EXAMPLE_TINY=1 for a seconds-long run)
"""

import argparse
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import dsmtheory as dsm
from dsmtheory import parameterization, weightings
from dsmtheory._io import write_json
from dsmtheory.derivations import Check, Derivation
from dsmtheory.derivations._base import is_identity

dsm.enable_x64()
TINY = os.environ.get("DSM_EXAMPLE_TINY") == "1"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--gamma", type=float, default=5.0, help="clip level of SNR (default 5)")
parser.add_argument("--n", type=float, default=2.0, help="sharpness of the clip (default 2)")
parser.add_argument("--out", default="out/examples", help="output folder (default out/examples)")
args = parser.parse_args()


# --- 1. the weighting and its registration ----------------------------------------------
def power_min_snr(gamma: float = 5.0, n: float = 2.0) -> weightings.Weighting:
    r"""Power-mean Min-SNR: $\omega_\varepsilon=(1+(e^\lambda/\gamma)^n)^{-1/n}$."""
    if not (gamma > 0 and n > 0):
        raise ValueError(f"gamma and n must be > 0, got gamma={gamma}, n={n}")
    g, nn = float(gamma), float(n)
    log_g = math.log(g)

    def fn(lam):  # log omega = -(1/n) softplus(n (lam - log gamma)): no overflow at large lam
        return jnp.exp(-jax.nn.softplus(nn * (lam - log_g)) / nn)

    return weightings.Weighting(
        name="power_min_snr",
        params={"gamma": g, "n": nn},
        formula=r"\omega_\varepsilon(\lambda)=(1+(e^{\lambda}/\gamma)^n)^{-1/n}",
        paper="example (smooth Min-SNR-gamma)",
        formulas_item="FORMULAS.md §3.8-3.9 (between)",
        monotonic=None,
        fn=fn,
    )


weightings.register("power_min_snr", power_min_snr, overwrite=True)
w = weightings.get("power_min_snr", gamma=args.gamma, n=args.n)
print("registered:", "power_min_snr" in weightings.names(), "->", w.formula, dict(w.params))

# --- 2. evaluate it and its total weight under a schedule --------------------------------
sched = dsm.schedules.get("cosine")
lam_show = jnp.sort(jnp.array([-6.0, -2.0, 0.0, math.log(args.gamma), 2.0, 4.0, 8.0]))
ref = weightings.get("min_snr", gamma=args.gamma)
soft = weightings.get("soft_min_snr", gamma=args.gamma)
print(f"\n{'lam':>7} {'omega_eps':>11} {'min_snr':>11} {'soft_min':>11} {'w=p*omega':>11}")
for lam_i, om, mn, so, tot in zip(
    lam_show, w(lam_show), ref(lam_show), soft(lam_show), w.total(lam_show, sched), strict=True
):
    print(
        f"{float(lam_i):7.3f} {float(om):11.5f} {float(mn):11.5f} {float(so):11.5f} "
        f"{float(tot):11.5f}"
    )
grid = jnp.linspace(sched.lam_min, sched.lam_max, 2001 if TINY else 20001)
tot = np.asarray(w.total(grid, sched))
integral = float(np.sum(0.5 * (tot[1:] + tot[:-1]) * np.diff(np.asarray(grid))))
print(
    f"integral of w(lam) over the cosine schedule's range [{sched.lam_min:.3f}, "
    f"{sched.lam_max:.3f}] (trapezoid, {grid.size} nodes) = {integral:.6f}"
)
print("(E_lam~p[omega_eps]: the mean per-sample multiplier the trainer sees)")

# --- 3. the same weighting in x0 and v space (VP) -----------------------------------------
om = w(lam_show)
om_x0 = parameterization.from_eps_multiplier(om, "x0", lam_show, "vp")
om_v = parameterization.from_eps_multiplier(om, "v", lam_show, "vp")
print(f"\n{'lam':>7} {'omega_x0':>11} {'omega_v':>11}   (VP; omega_x0 -> gamma as lam -> +inf)")
for lam_i, a, b in zip(lam_show, om_x0, om_v, strict=True):
    print(f"{float(lam_i):7.3f} {float(a):11.5f} {float(b):11.5f}")
back = parameterization.to_eps_multiplier(om_x0, "x0", lam_show, "vp")
print("round trip x0 -> eps, max abs error:", float(jnp.max(jnp.abs(back - om))))

# --- 4. a symbolic proof with the derivations framework ----------------------------------
lam_s = sp.Symbol("lam", real=True)
gam_s, n_s, u = sp.symbols("gamma n u", positive=True)
omega_sym = (1 + (sp.exp(lam_s) / gam_s) ** n_s) ** (-1 / n_s)


def _checks() -> list[Check]:
    out = []
    # lam -> +inf: substitute e^lam = gamma u, so SNR * omega = gamma u (1 + u^n)^(-1/n)
    tail = (sp.exp(lam_s) * omega_sym).subs(sp.exp(lam_s), gam_s * u)
    lim_hi = sp.limit(tail, u, sp.oo)
    out.append(
        Check("SNR*omega -> gamma as lam -> +inf", is_identity(lim_hi, gam_s), f"limit = {lim_hi}")
    )
    lim_lo = sp.limit(omega_sym.subs(n_s, args.n).subs(gam_s, args.gamma), lam_s, -sp.oo)
    lim_lo_sym = sp.limit((1 + u**n_s) ** (-1 / n_s), u, 0)  # e^lam/gamma -> 0
    out.append(
        Check("omega -> 1 as lam -> -inf", lim_lo == 1 and lim_lo_sym == 1, f"limit = {lim_lo_sym}")
    )
    sd2 = 1 / gam_s
    sms = 1 / (1 + sd2 * sp.exp(lam_s))  # registry soft_min_snr, sigma_d^2 = 1/gamma
    out.append(
        Check(
            "n = 1 is soft_min_snr(sigma_d^2 = 1/gamma)", is_identity(omega_sym.subs(n_s, 1), sms)
        )
    )
    p2 = (gam_s + sp.exp(lam_s)) ** (-1)  # registry p2, k = gamma, exponent 1
    out.append(
        Check(
            "n = 1 is gamma * p2(k = gamma, gamma = 1)",
            is_identity(omega_sym.subs(n_s, 1), gam_s * p2),
        )
    )
    return out


DERIVATION = Derivation(
    name="ex02_power_min_snr",
    title="Power-mean Min-SNR: tail, plateau and the n = 1 member",
    statement=r"$\omega=(1+(e^\lambda/\gamma)^n)^{-1/n}$ has $e^\lambda\omega\to\gamma$ "
    r"($\lambda\to\infty$), $\omega\to1$ ($\lambda\to-\infty$), and at $n=1$ equals "
    r"Soft-Min-SNR ($\sigma_d^2=1/\gamma$) and $\gamma\,$P2($k=\gamma$, 1).",
    source="examples/02_custom_weighting.py",
    method="sympy limits in u = e^lam/gamma and cancel/simplify identities",
    kind="symbolic",
    checks=_checks,
)
result = DERIVATION.verify()
print("\n", result, sep="")
print("holds:", result.holds)

# --- 5. lambdify the sympy expression and compare with the registered JAX weighting ------
f = sp.lambdify((lam_s, gam_s, n_s), omega_sym, "numpy")
rng = np.random.default_rng(0)
lam_r = rng.uniform(-20.0, 20.0, 200 if TINY else 100_000)
diff = np.abs(f(lam_r, args.gamma, args.n) - np.asarray(w(lam_r)))
print(f"sympy vs JAX at {lam_r.size} random lam in [-20, 20]: max abs diff = {diff.max():.3e}")
w1 = weightings.get("power_min_snr", gamma=args.gamma, n=1.0)
print(
    "n = 1 vs registry soft_min_snr, max abs diff =",
    f"{float(jnp.max(jnp.abs(w1(lam_r) - soft(lam_r)))):.3e}",
)
path = write_json(
    Path(args.out) / "02_custom_weighting.json",
    {
        "weighting": "power_min_snr",
        "params": dict(w.params),
        "result": result._asdict(),
        "sympy_vs_jax_max_abs_diff": float(diff.max()),
        "total_weight_integral_cosine": integral,
    },
)
print("wrote", path)
