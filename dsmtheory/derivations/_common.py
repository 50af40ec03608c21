r"""Shared sympy symbols and the closed forms several derivations reuse (FORMULAS.md §1, §3).

All symbols carry explicit assumptions (real log-SNR, positive scales) so that sympy's
``cancel``/``simplify`` close the proofs quickly.
"""

from __future__ import annotations

import sympy as sp

lam = sp.Symbol("lam", real=True)  # log-SNR λ
snr = sp.Symbol("snr", positive=True)  # SNR = e^λ
tau = sp.Symbol("tau", positive=True)
sigma_data = sp.Symbol("sigma_data", positive=True)
gamma = sp.Symbol("gamma", positive=True)
k = sp.Symbol("k", real=True)
alpha = sp.Symbol("alpha", positive=True)
sigma = sp.Symbol("sigma", positive=True)
s = sp.Symbol("s", real=True)  # cosine shift


def sigmoid(x: sp.Expr) -> sp.Expr:
    r"""$\mathrm{sigmoid}(x)=1/(1+e^{-x})$."""
    return 1 / (1 + sp.exp(-x))


def vp_alpha2(x: sp.Expr = lam) -> sp.Expr:
    r"""VP $\alpha^2=\mathrm{sigmoid}(\lambda)$."""
    return sigmoid(x)


def vp_sigma2(x: sp.Expr = lam) -> sp.Expr:
    r"""VP $\sigma^2=\mathrm{sigmoid}(-\lambda)$."""
    return sigmoid(-x)


def omega_smoothed_kl(x: sp.Expr = lam, t: sp.Expr = tau) -> sp.Expr:
    r"""Smoothed-KL $\omega_\tau=v/(v+\tau^2)$ with $v=\sigma^2_{VP}=1/(1+e^\lambda)$ [R]."""
    v = vp_sigma2(x)
    return v / (v + t**2)


def omega_soft_min_snr(x: sp.Expr = lam, sd: sp.Expr = sigma_data) -> sp.Expr:
    r"""Soft-Min-SNR ε-multiplier $1/(1+\sigma_d^2e^\lambda)$ (FORMULAS §3 item 9)."""
    return 1 / (1 + sd**2 * sp.exp(x))


def omega_p2(x: sp.Expr = lam, kk: sp.Expr = k, g: sp.Expr = gamma) -> sp.Expr:
    r"""P2 ε-multiplier $(k+e^\lambda)^{-\gamma}$ (FORMULAS §3 item 10)."""
    return (kk + sp.exp(x)) ** (-g)


def sech(x: sp.Expr) -> sp.Expr:
    r"""$\mathrm{sech}(x)=2/(e^x+e^{-x})$, written with exponentials for ``cancel``."""
    return 2 / (sp.exp(x) + sp.exp(-x))


def normal_pdf(x: sp.Expr, mean: sp.Expr, std: sp.Expr) -> sp.Expr:
    """Gaussian density $N(x;\\mu,s^2)$."""
    return sp.exp(-((x - mean) ** 2) / (2 * std**2)) / (std * sp.sqrt(2 * sp.pi))


def to_snr(expr: sp.Expr) -> sp.Expr:
    r"""Rewrite an expression in $\lambda$ as a function of SNR $=e^\lambda$ (so that
    ``cancel`` sees a rational function)."""
    return sp.sympify(expr).subs(lam, sp.log(snr))
