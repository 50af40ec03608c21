r"""The variance-optimal multiplier c*(sigma) for your own data, against EDM and first order.

State your data as a Gaussian mixture (weights, means, covariances; here a 2-D,
3-component, anisotropic mixture, the one of ``examples/configs/my_data.toml``). In
Lambda(t) = c(t) sigma_t^2, the multiplier that makes the weighted irreducible DSM noise
Lambda R constant over noise levels is (FORMULAS.md §6(c))

    c*(sigma) = 1 / (1 - sigma^2 tr I_t / D) = D sigma^2 / (alpha^2 mmse(t)),

computed here by quadrature of the closed-form posterior covariance (no Monte Carlo, no
cancellation at small sigma). It is compared with

* EDM's multiplier 1 + sigma^2 / s^2 with sigma_data = s the data's per-coordinate std
  (exact for isotropic Gaussian data, P14), and
* the first-order law 1 + sigma^2 J0, J0 = tr I_0 / D (P9: exact as sigma -> 0).

A table is printed and a PNG is written to --out (default out/examples/).

Run: python examples/03_c_star_for_your_data.py [--out DIR]   (DSM_EXAMPLE_TINY=1: seconds)
"""

import argparse
import os
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure

import dsmtheory as dsm
from dsmtheory import optimal, variance
from dsmtheory._io import save_figure

dsm.enable_x64()
TINY = os.environ.get("DSM_EXAMPLE_TINY") == "1"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="out/examples", help="output folder (default out/examples)")
args = parser.parse_args()
out = Path(args.out)

# --- your data: weights (K,), means (K, D), full covariances (K, D, D) --------------------
gm = dsm.GaussianMixture(
    weights=[0.2, 0.5, 0.3],
    means=[[-2.0, 0.0], [1.0, 1.0], [2.5, -1.5]],
    covs=[
        [[0.3, 0.1], [0.1, 0.2]],
        [[0.5, 0.0], [0.0, 0.1]],
        [[0.2, -0.05], [-0.05, 0.4]],
    ],
)
D = gm.dim
s2 = float(np.trace(np.asarray(gm.covariance()))) / D  # EDM sigma_data^2: per-coordinate var
nodes = 24 if TINY else 80  # Gauss-Hermite nodes per axis and component
# J0 = tr I_0 / D of the clean density, by adaptive cubature (exact to ~1e-12)
fisher0 = variance.fisher_information(gm)
j0 = float(np.trace(np.asarray(fisher0.matrix))) / D
print(gm)
print(
    f"D = {D}, data per-coordinate std s = sigma_data = {s2**0.5:.4f}, "
    f"J0 = tr I_0 / D = {j0:.6f} ({fisher0.method})"
)
print(f"smallest component std = {float(np.sqrt(np.min(np.asarray(gm.eigvals)))):.4f}")

# --- c*(sigma) on a grid (VE: alpha = 1; c* depends on sigma/alpha only) ------------------
sigmas = np.geomspace(1e-2, 1e2, 25 if TINY else 121)
c_star = np.asarray(optimal.c_star_curve(gm, sigmas, "ve", num_nodes=nodes))
edm = 1.0 + sigmas**2 / s2
first = 1.0 + sigmas**2 * j0

print(f"\n{'sigma':>9} {'c*':>10} {'EDM':>10} {'1+s^2J0':>10} {'c*/EDM':>8}")
for i in range(0, sigmas.size, max(1, sigmas.size // 12)):
    print(
        f"{sigmas[i]:9.4f} {c_star[i]:10.4f} {edm[i]:10.4f} {first[i]:10.4f} "
        f"{c_star[i] / edm[i]:8.4f}"
    )

# independent cross-checks at one sigma: the adaptive cubature (the default in 2-D), Gauss-Hermite
# with the nodes above, and a Monte Carlo Estimate with its standard error
sig = 0.5
ad = optimal.homoskedastic_multiplier(gm, 1.0, sig, method="adaptive")
gh = optimal.homoskedastic_multiplier(gm, 1.0, sig, method="gauss_hermite", num_nodes=nodes)
n_mc = 4000 if TINY else 100_000
mc = optimal.homoskedastic_multiplier(
    gm, 1.0, sig, method="monte_carlo", key=jax.random.PRNGKey(0), num_samples=n_mc
)
print(
    f"\nc*({sig}): adaptive cubature {float(ad.value):.6f}; Gauss-Hermite ({nodes} nodes/axis) "
    f"{float(gh.value):.6f}; Monte Carlo ({n_mc} samples) {float(mc.value):.5f} "
    f"+- {float(mc.stderr):.5f}"
)
small = sigmas < 0.05
print(
    "max relative gap to first order for sigma < 0.05:",
    f"{np.max(np.abs(c_star[small] - first[small]) / (c_star[small] - 1)):.3%} of c*-1",
)
big = sigmas > 20
print(
    "max relative gap to EDM for sigma > 20:", f"{np.max(np.abs(c_star[big] / edm[big] - 1)):.3%}"
)
i_peak = int(np.argmax(c_star / edm))
print(
    f"largest c*/EDM = {c_star[i_peak] / edm[i_peak]:.3f} at sigma = {sigmas[i_peak]:.3f} "
    "(mode-separation scale: c* behaves like EDM with sigma_data = component std there)"
)

# --- figure -------------------------------------------------------------------------------
fig = Figure(figsize=(11, 4.2))
ax, ax2 = fig.subplots(1, 2)
ax.loglog(sigmas, c_star, "k-", lw=2, label=r"$c^*(\sigma)$ (exact, quadrature)")
ax.loglog(sigmas, edm, "C0--", label=rf"EDM $1+\sigma^2/s^2$, $s={s2**0.5:.2f}$")
ax.loglog(sigmas, first, "C1:", label=rf"first order $1+\sigma^2J_0$, $J_0={j0:.2f}$")
ax.set_ylabel(r"multiplier $c$ in $\Lambda=c\,\sigma^2$")
ax.set_ylim(0.9, None)
ax.legend(frameon=False)
ax.set_title("2-D anisotropic mixture: $c^*$ vs EDM and first order")
ax2.loglog(sigmas, c_star - 1.0, "k-", lw=2, label=r"$c^*-1$")
ax2.loglog(sigmas, edm - 1.0, "C0--", label=r"$\sigma^2/s^2$")
ax2.loglog(sigmas, first - 1.0, "C1:", label=r"$\sigma^2J_0$")
ax2.set_ylabel(r"$c-1$")
ax2.legend(frameon=False)
ax2.set_title("low noise: $c^*-1\\sim\\sigma^2J_0$ (P9)")
for a_ in (ax, ax2):
    a_.set_xlabel(r"$\sigma$ (VE; $\tilde\sigma=\sigma/\alpha$ in general)")
path = save_figure(fig, out / "03_c_star.png")
print("wrote", path)
