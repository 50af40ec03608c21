"""Loss multipliers as training scripts write them: NumPy functions of SNR (or sigma).

Each returns the multiplier the script puts on its per-example MSE; the comment says on
which MSE and where the formula ships. The first of each group is correct, the others are
the bugs dsmtheory.testing should catch. Written from the formulas in the linked threads,
not copied from their code.
"""

import numpy as np

GAMMA = 5.0

# --- Min-SNR-gamma (Hang et al. 2023) on a v-prediction loss: the MSE is on v ------------


def min_snr_v(snr, gamma=GAMMA):
    # correct: min(SNR, gamma) / (SNR + 1) (diffusers PR #6307, fixing issue #5654)
    return np.minimum(snr, gamma) / (snr + 1)


def min_snr_v_eps_formula(snr, gamma=GAMMA):
    # the eps weight min(SNR, gamma) / SNR reused for v (diffusers' scripts before PR #5106)
    return np.minimum(snr, gamma) / snr


def min_snr_v_plus_one(snr, gamma=GAMMA):
    # the eps weight "floored to one" by adding 1 (diffusers PR #5106; still in
    # examples/dreambooth/train_dreambooth_lora_sdxl.py)
    return np.minimum(snr, gamma) / snr + 1


def min_snr_v_snr_plus_one(snr, gamma=GAMMA):
    # SNR + 1 in place of SNR, inside the min too (diffusers PR #5238, reported in #5654;
    # still in examples/research_projects/pixart/train_pixart_controlnet_hf.py)
    return np.minimum(snr + 1, gamma) / (snr + 1)


# --- Min-SNR on an x0 ("sample") loss --------------------------------------------------


def min_snr_x0(snr, gamma=GAMMA):
    # correct: the paper's x-loss weight min(SNR, gamma)
    return np.minimum(snr, gamma)


def min_snr_x0_eps_formula(snr, gamma=GAMMA):
    # "epsilon and sample both use the same loss weights" (diffusers PR #5177; dreambooth)
    return np.minimum(snr, gamma) / snr


# --- Min-SNR on an eps loss, with the min written as a max -----------------------------


def min_snr_eps(snr, gamma=GAMMA):
    # correct: min(SNR, gamma) / SNR
    return np.minimum(snr, gamma) / snr


def min_snr_eps_max(snr, gamma=GAMMA):
    # snr.clamp(min=gamma) / snr is max(SNR, gamma) / SNR (lucidrains RIN issue #11,
    # denoising-diffusion-pytorch PR #363)
    return np.maximum(snr, gamma) / snr


# --- debiased estimation (Yu et al. 2023, 2310.08442): 1/sqrt(SNR) on the eps loss --------


def debiased_v(snr):
    # correct on a v loss: omega_eps / kappa_v = sqrt(SNR) / (SNR + 1)
    return np.sqrt(snr) / (snr + 1)


def debiased_v_eps_formula(snr):
    # the eps weight 1/sqrt(SNR) kept for v-prediction (disputed in OneTrainer PR #212's review)
    return 1.0 / np.sqrt(snr)


# --- Soft-Min-SNR (Crowson et al. 2024) on EDM's F loss, as a function of sigma ---------


def soft_min_snr_f(sigma, gamma=GAMMA, sigma_data=0.5):
    # correct with a free gamma: x-weight (1/SNR + 1/gamma)^-1 times c_out^2, sigma^2 = 1/SNR
    c_out2 = (sigma * sigma_data) ** 2 / (sigma**2 + sigma_data**2)
    return c_out2 / (sigma**2 + 1.0 / gamma)


def soft_min_snr_f_kdiffusion(sigma, sigma_data=0.5):
    # k-diffusion's _weighting_soft_min_snr: gamma hard-wired to sigma_data^-2 (issue #98)
    return (sigma * sigma_data) ** 2 / (sigma**2 + sigma_data**2) ** 2
