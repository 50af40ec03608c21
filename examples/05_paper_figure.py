r"""Reproduce two paper figures from the toolkit's closed forms.

(a) Kingma & Gao 2023, Fig. 1 style: the total weight w(lam) = p(lam) omega_eps(lam) of
    the catalog weightings over log-SNR, each scaled to a maximum of 1. Weightings trained
    with the cosine schedule use its density p(lam) = sech(lam/2)/(2 pi); EDM-family
    weightings use EDM's log-normal training density N(2.4, 2.4^2). Weightings defined as
    total weights (ELBO, sigmoid, sech, EDM-monotonic) come out as defined.
(b) Zhang et al. 2025, heteroskedasticity of the DSM target: the irreducible variance
    R(sigma) = D/sigma^2 - tr I_t of the 2-D ring of 8 Gaussians (VE), on log-log axes
    with the line D/sigma^2: R follows D/sigma^2 (slope -2) at low noise and falls far
    below it once sigma exceeds the ring's radius.

The PNG is written to --out (default out/examples/).

Run: python examples/05_paper_figure.py [--out DIR]   (DSM_EXAMPLE_TINY=1: seconds)
"""

import argparse
import os
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure

import dsmtheory as dsm
from dsmtheory import schedules, variance, weightings
from dsmtheory._io import save_figure

dsm.enable_x64()
TINY = os.environ.get("DSM_EXAMPLE_TINY") == "1"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="out/examples", help="output folder (default out/examples)")
args = parser.parse_args()

# --- (a) total weights of the catalog ------------------------------------------------------
lam = np.linspace(-10.0, 15.0, 501 if TINY else 2001)
cosine = schedules.get("cosine")
edm_train = schedules.get("edm_training")
catalog = {  # label: (registry name, parameters, sampling density)
    "ELBO (w = 1)": ("elbo", {"schedule": cosine}, cosine),
    "eps-pred + cosine: sech": ("sech", {"schedule": cosine}, cosine),
    "v-pred + cosine": ("v", {}, cosine),
    "sigmoid(2 - lam)": ("sigmoid", {"k": 2.0, "schedule": cosine}, cosine),
    "EDM": ("edm", {}, edm_train),
    "EDM-monotonic": ("edm_monotonic", {}, edm_train),
    "Min-SNR-5 + cosine": ("min_snr", {"gamma": 5.0}, cosine),
    "Soft-Min-SNR (sd=0.5) + cosine": ("soft_min_snr", {"sigma_data": 0.5}, cosine),
    "P2 (k=1, g=1) + cosine": ("p2", {"k": 1.0, "gamma": 1.0}, cosine),
}
curves = {}
print(f"{'weighting':32s} {'argmax lam':>10} {'w(-5)':>8} {'w(0)':>8} {'w(5)':>8} {'w(10)':>8}")
for label, (name, params, dens) in catalog.items():
    w = np.asarray(weightings.get(name, **params).total(lam, dens))
    w = w / w.max()
    curves[label] = w
    at = [float(np.interp(x, lam, w)) for x in (-5.0, 0.0, 5.0, 10.0)]
    print(f"{label:32s} {lam[np.argmax(w)]:10.2f} " + " ".join(f"{v:8.4f}" for v in at))
print("(w scaled to max 1 on lam in [-10, 15]; argmax at an end means monotone there)")
i = np.argmax(curves["EDM"])
print(f"EDM total weight peaks at lam* = {lam[i]:.2f} (FORMULAS.md §3.4: -3.31)")

# --- (b) heteroskedasticity on the ring -----------------------------------------------------
gm = dsm.ring(num_modes=8, radius=2.0, std=0.25)
sigmas = np.geomspace(1e-2, 1e2, 9 if TINY else 41)
if TINY:  # Rao-Blackwellized Monte Carlo of tr Cov(x0 | x_t) (with stderr), fast
    curve = variance.heteroskedasticity_curve(
        gm, sigmas, method="rao_blackwell", key=jax.random.PRNGKey(0), num_samples=4000
    )
else:  # adaptive quadrature (exact to ~1e-10)
    curve = variance.heteroskedasticity_curve(gm, sigmas)
print(f"\nring (K=8, radius 2, std 0.25), VE; R by {curve.method}")
print(f"{'sigma':>9} {'R':>12} {'stderr':>9} {'D/sigma^2':>12} {'R/(D/s^2)':>10}")
for s, r, se, ref in zip(curve.sigma, curve.R, curve.stderr, curve.reference, strict=True):
    print(f"{s:9.4f} {r:12.5g} {se:9.2g} {ref:12.5g} {r / ref:10.4f}")
low = curve.sigma <= 0.1
slope = variance.fit_loglog_slope(curve.sigma[low], curve.R[low])
print(f"log-log slope of R for sigma <= 0.1: {slope:.4f} (heteroskedastic: -2)")

fig = Figure(figsize=(13, 4.6))
ax0, ax1 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1.0]})
styles = ["-", "--", "-.", ":"]
for j, (label, w) in enumerate(curves.items()):
    ax0.plot(lam, w, styles[j % 4], lw=1.6, label=label)
ax0.set_xlabel(r"log-SNR $\lambda$")
ax0.set_ylabel(r"$w(\lambda)=p(\lambda)\,\omega_\varepsilon(\lambda)$, scaled to max 1")
ax0.set_title("(a) total weights of the catalog (Kingma & Gao Fig. 1 style)")
ax0.legend(fontsize=7, frameon=False, loc="center right")
ax1.loglog(curve.sigma, curve.R, "ko-", ms=3, label=r"$R(\sigma)=D/\sigma^2-\mathrm{tr}\,I_t$")
if np.any(curve.stderr > 0):
    ax1.fill_between(
        curve.sigma,
        curve.R - 2 * curve.stderr,
        curve.R + 2 * curve.stderr,
        color="k",
        alpha=0.2,
        lw=0,
    )
ax1.loglog(curve.sigma, curve.reference, "C3--", label=r"$D/\sigma^2$")
ax1.set_xlabel(r"$\sigma$")
ax1.set_ylabel("irreducible DSM variance (score space)")
ax1.set_title("(b) heteroskedasticity on the 2-D ring (Zhang et al.)")
ax1.legend(frameon=False)
fig.tight_layout()
path = save_figure(fig, Path(args.out) / "05_paper_figure.png")
print("wrote", path)
