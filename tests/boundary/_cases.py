"""The library boundary table: every public entry point, each argument, and the kinds of
bad value thrown at it. A case passes when the call raises the expected error type (a
TypeError for a value of the wrong type, a ValueError for a wrong value) and the message
names the argument. Every good call here is cheap (no compilation before the error)."""

from __future__ import annotations

import math

import jax
import numpy as np

import dsmtheory as dsm
from dsmtheory import (
    adaptive,
    losses,
    metrics,
    models,
    optimal,
    parameterization,
    sampling,
    schedules,
    targets,
    variance,
    weightings,
)

GM = dsm.GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [1.0, 2.0])
X = np.zeros((3, 2))
KEY = jax.random.PRNGKey(0)

#: bad values by kind: (value, expected error type)
TYPE_KINDS = {
    "str": ("1.0", TypeError),
    "bool": (True, TypeError),
    "complex": (1.0 + 1.0j, TypeError),
    "none": (None, TypeError),
    "list_str": (["a", "b"], TypeError),
}
VALUE_KINDS = {
    "nan": (math.nan, ValueError),
    "inf": (math.inf, ValueError),
    "neg": (-1.0, ValueError),
    "zero": (0.0, ValueError),
}
ARRAY_KINDS = {
    "str": ("abc", TypeError),
    "bool_array": (np.ones((3, 2), dtype=bool), TypeError),
    "complex_array": (np.ones((3, 2), dtype=complex), TypeError),
    "object_array": (np.array([[1.0, None], [0.0, 1.0], [1.0, 1.0]], dtype=object), TypeError),
    "ragged": ([[0.0, 1.0], [1.0]], TypeError),
    "none": (None, TypeError),
    "nan": (np.full((3, 2), np.nan), ValueError),
    "wrong_dim": (np.zeros((3, 5)), ValueError),
}
SCALAR_POS = ("str", "bool", "complex", "none", "nan", "neg", "zero")
SCALAR_REAL = ("str", "bool", "complex", "none", "nan", "inf")
COUNT = ("str", "bool", "none", "float", "zero_int", "neg_int")
COUNT_KINDS = {
    "float": (2.5, (TypeError, ValueError)),
    "zero_int": (0, ValueError),
    "neg_int": (-3, ValueError),
}


def _kind(kind):
    for table in (TYPE_KINDS, VALUE_KINDS, ARRAY_KINDS, COUNT_KINDS):
        if kind in table:
            return table[kind]
    raise KeyError(kind)


# (entry id, argument name as the message must show it, call taking the bad value, kinds)
ENTRIES = [
    # --- mixtures ---
    (
        "GaussianMixture",
        "weights",
        lambda v: dsm.GaussianMixture(v, [[0.0]], [1.0]),
        ("str", "bool", "complex", "none", "list_str"),
    ),
    (
        "GaussianMixture",
        "means",
        lambda v: dsm.GaussianMixture([1.0], v, [1.0]),
        ("str", "complex", "none", "list_str", "nan"),
    ),
    (
        "GaussianMixture",
        "covs",
        lambda v: dsm.GaussianMixture([1.0], [[0.0]], v),
        ("str", "bool", "complex", "none", "nan", "neg"),
    ),
    ("single_gaussian", "std", lambda v: dsm.single_gaussian([0.0], v), SCALAR_POS),
    (
        "single_gaussian",
        "mean",
        lambda v: dsm.single_gaussian(v, 1.0),
        ("str", "complex", "none", "list_str", "nan"),
    ),
    ("ring", "radius", lambda v: dsm.ring(4, v, 0.1), SCALAR_POS),
    ("ring", "std", lambda v: dsm.ring(4, 1.0, v), SCALAR_POS),
    ("ring", "num_modes", lambda v: dsm.ring(v), COUNT),
    ("bimodal_1d", "separation", lambda v: dsm.bimodal_1d(v), SCALAR_POS),
    ("bimodal_1d", "weight", lambda v: dsm.bimodal_1d(4.0, 0.25, v), SCALAR_POS),
    ("grid_2d", "spacing", lambda v: dsm.grid_2d(2, v), SCALAR_POS),
    ("grid_2d", "n", lambda v: dsm.grid_2d(v), COUNT),
    ("random_anisotropic", "dim", lambda v: dsm.random_anisotropic(dim=v), COUNT),
    (
        "random_anisotropic",
        "spread",
        lambda v: dsm.random_anisotropic(spread=v),
        ("str", "bool", "complex", "none", "nan", "neg"),
    ),
    ("posterior_mean", "x_t", lambda v: dsm.posterior_mean(GM, v, 1.0, 0.5), ARRAY_KINDS),
    ("posterior_mean", "alpha", lambda v: dsm.posterior_mean(GM, X, v, 0.5), SCALAR_POS),
    ("posterior_mean", "sigma", lambda v: dsm.posterior_mean(GM, X, 1.0, v), SCALAR_POS),
    ("posterior_cov", "sigma", lambda v: dsm.posterior_cov(GM, X, 1.0, v), SCALAR_POS),
    ("GaussianMixture.score", "x", lambda v: GM.score(v), ARRAY_KINDS),
    ("GaussianMixture.log_prob", "x", lambda v: GM.log_prob(v), ARRAY_KINDS),
    ("GaussianMixture.noised", "sigma", lambda v: GM.noised(1.0, v), SCALAR_POS),
    ("GaussianMixture.sample", "n", lambda v: GM.sample(KEY, v), COUNT),
    # --- variance / optimal ---
    ("irreducible_variance", "alpha", lambda v: dsm.irreducible_variance(GM, v, 0.5), SCALAR_POS),
    ("irreducible_variance", "sigma", lambda v: dsm.irreducible_variance(GM, 1.0, v), SCALAR_POS),
    (
        "irreducible_variance",
        "num_samples",
        lambda v: dsm.irreducible_variance(GM, 1.0, 0.5, method="monte_carlo", num_samples=v),
        ("str", "bool", "float", "zero_int", "neg_int"),
    ),
    ("mmse", "sigma", lambda v: dsm.mmse(GM, 1.0, v), SCALAR_POS),
    ("effective_dimension", "alpha", lambda v: dsm.effective_dimension(GM, v, 0.5), SCALAR_POS),
    (
        "heteroskedasticity_curve",
        "sigmas",
        lambda v: variance.heteroskedasticity_curve(GM, v),
        ("str", "bool", "complex", "none", "nan", "neg", "zero"),
    ),
    (
        "fisher_information",
        "key",
        lambda v: dsm.fisher_information(GM, method="monte_carlo", key=v, num_samples=64),
        ("str", "bool", "complex", "float"),
    ),
    (
        "fit_loglog_slope",
        "x",
        lambda v: variance.fit_loglog_slope(v, [1.0, 2.0]),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "alphas_for",
        "sigmas",
        lambda v: variance.alphas_for(v, "vp"),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "homoskedastic_multiplier",
        "sigma",
        lambda v: optimal.homoskedastic_multiplier(GM, 1.0, v),
        SCALAR_POS,
    ),
    (
        "c_star_curve",
        "sigmas",
        lambda v: optimal.c_star_curve(GM, v),
        ("str", "bool", "complex", "none", "nan", "neg"),
    ),
    (
        "c_star_of_lambda",
        "lam",
        lambda v: optimal.c_star_of_lambda(GM, v),
        ("str", "bool", "complex", "none", "nan"),
    ),
    ("matrix_weight", "x_t", lambda v: optimal.matrix_weight(GM, v, 1.0, 0.5), ARRAY_KINDS),
    ("residual_variance", "sigma", lambda v: optimal.residual_variance(GM, 1.0, v), SCALAR_POS),
    (
        "equivalent_c",
        "lam",
        lambda v: optimal.equivalent_c("edm", v),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "optimal_density",
        "lam",
        lambda v: optimal.optimal_density(v, [1.0, 1.0], [1.0, 1.0]),
        ("str", "bool", "complex", "none", "nan"),
    ),
    # --- targets ---
    (
        "targets.dsm_target",
        "x0",
        lambda v: targets.dsm_target(v, X, 1.0, 0.5),
        ("str", "bool_array", "complex_array", "object_array", "ragged", "none", "nan"),
    ),
    ("targets.dsm_target", "sigma", lambda v: targets.dsm_target(X, X, 1.0, v), SCALAR_POS),
    (
        "targets.dsm_target",
        "order",
        lambda v: targets.dsm_target(X, X, 1.0, 0.5, v),
        ("str", "bool", "none", "float", "zero_int"),
    ),
    ("targets.target_mean", "x_t", lambda v: targets.target_mean(GM, v, 1.0, 0.5), ARRAY_KINDS),
    (
        "targets.irreducible_target_variance",
        "sigma",
        lambda v: targets.irreducible_target_variance(GM, 1.0, v),
        SCALAR_POS,
    ),
    (
        "targets.gaussian_target_variance",
        "std",
        lambda v: targets.gaussian_target_variance(2, v, 1.0, 0.5),
        SCALAR_POS,
    ),
    (
        "targets.gaussian_target_variance",
        "dim",
        lambda v: targets.gaussian_target_variance(v, 1.0, 1.0, 0.5),
        COUNT,
    ),
    (
        "targets.kappa_star",
        "lam",
        lambda v: targets.kappa_star(v, 2.0, 2),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "targets.tsm_moments",
        "num_outer",
        lambda v: targets.tsm_moments(GM, 1.0, 0.5, num_outer=v),
        COUNT,
    ),
    # --- schedules ---
    ("schedules.get(ve)", "sigma_min", lambda v: schedules.get("ve", sigma_min=v), SCALAR_POS),
    ("schedules.get(ve)", "sigma_max", lambda v: schedules.get("ve", sigma_max=v), SCALAR_POS),
    (
        "schedules.get(vp_linear)",
        "beta_min",
        lambda v: schedules.get("vp_linear", beta_min=v),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "schedules.get(edm_training)",
        "p_mean",
        lambda v: schedules.get("edm_training", p_mean=v),
        SCALAR_REAL,
    ),
    (
        "schedules.get(edm_training)",
        "p_std",
        lambda v: schedules.get("edm_training", p_std=v),
        SCALAR_POS,
    ),
    (
        "schedules.get(edm_sampling)",
        "rho",
        lambda v: schedules.get("edm_sampling", rho=v),
        SCALAR_POS,
    ),
    (
        "schedules.get(cosine)",
        "lam_min",
        lambda v: schedules.get("cosine", lam_min=v),
        ("str", "bool", "complex", "nan"),
    ),
    (
        "schedules.get",
        "process",
        lambda v: schedules.get("ve", process=v),
        ("bool", "none", "complex"),
    ),
    (
        "Schedule.lam",
        "t",
        lambda v: schedules.get("ve").lam(v),
        ("str", "bool", "complex", "none", "nan", "neg"),
    ),
    (
        "Schedule.density",
        "lam",
        lambda v: schedules.get("ve").density(v),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "Schedule.g2",
        "t",
        lambda v: schedules.get("cosine").g2(v),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "alpha_sigma",
        "lam",
        lambda v: schedules.alpha_sigma(v, "vp"),
        ("str", "bool", "complex", "none"),
    ),
    # --- weightings ---
    (
        "weightings.get(edm)",
        "sigma_data",
        lambda v: weightings.get("edm", sigma_data=v),
        SCALAR_POS,
    ),
    ("weightings.get(min_snr)", "gamma", lambda v: weightings.get("min_snr", gamma=v), SCALAR_POS),
    ("weightings.get(sigmoid)", "k", lambda v: weightings.get("sigmoid", k=v), SCALAR_REAL),
    ("weightings.get(p2)", "gamma", lambda v: weightings.get("p2", gamma=v), SCALAR_POS),
    (
        "weightings.get(smoothed_kl)",
        "tau",
        lambda v: weightings.get("smoothed_kl", tau=v),
        SCALAR_POS,
    ),
    (
        "weightings.get(vdm)",
        "steps",
        lambda v: weightings.get("vdm", steps=v),
        ("str", "bool", "float", "zero_int"),
    ),
    (
        "weightings.get(elbo)",
        "schedule",
        lambda v: weightings.get("elbo", schedule=v),
        ("bool", "complex", "float"),
    ),
    (
        "Weighting.__call__",
        "lam",
        lambda v: weightings.get("simple")(v),
        ("str", "bool", "complex", "none", "nan"),
    ),
    # --- parameterization / losses ---
    (
        "parameterization.kappa",
        "lam",
        lambda v: parameterization.kappa("eps", v),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "parameterization.kappa",
        "sigma_data",
        lambda v: parameterization.kappa("F", 0.0, sigma_data=v),
        SCALAR_POS,
    ),
    (
        "parameterization.edm_coefficients",
        "sigma_data",
        lambda v: parameterization.edm_coefficients(1.0, 0.5, v),
        SCALAR_POS,
    ),
    (
        "parameterization.to_eps",
        "x_t",
        lambda v: parameterization.to_eps(X, "x0", v, 1.0, 0.5),
        ("str", "bool_array", "complex_array", "object_array", "ragged", "none"),
    ),
    (
        "parameterization.to_eps",
        "sigma",
        lambda v: parameterization.to_eps(X, "x0", X, 1.0, v),
        SCALAR_POS,
    ),
    (
        "losses.dsm_target",
        "x0",
        lambda v: losses.dsm_target(v, X, 0.0, parameterization="eps", process="vp"),
        ("str", "bool_array", "complex_array", "object_array", "ragged", "none", "nan"),
    ),
    (
        "losses.dsm_target",
        "lam",
        lambda v: losses.dsm_target(X, X, v, parameterization="v", process="vp"),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "losses.dsm_target",
        "sigma_data",
        lambda v: losses.dsm_target(X, X, 0.0, parameterization="F", process="ve", sigma_data=v),
        SCALAR_POS,
    ),
    (
        "losses.dsm_loss",
        "pred",
        lambda v: losses.dsm_loss(
            v, X, X, 0.0, parameterization="eps", weighting=1.0, process="vp"
        ),
        ("str", "bool_array", "complex_array", "object_array", "ragged", "none", "wrong_dim"),
    ),
    (
        "losses.dsm_loss",
        "weighting",
        lambda v: losses.dsm_loss(X, X, X, 0.0, parameterization="eps", weighting=v, process="vp"),
        ("str", "bool", "complex", "none", "nan"),
    ),
    # --- metrics ---
    ("energy_distance", "x", lambda v: metrics.energy_distance(v, X), ARRAY_KINDS),
    (
        "energy_distance",
        "block_size",
        lambda v: metrics.energy_distance(X, X, block_size=v),
        ("str", "bool", "float", "zero_int"),
    ),
    (
        "sliced_energy_distance",
        "key",
        lambda v: metrics.sliced_energy_distance(v, X, X, num_projections=4),
        ("str", "bool", "complex", "float"),
    ),
    ("nll", "samples", lambda v: metrics.nll(GM, v), ARRAY_KINDS),
    ("mode_coverage", "samples", lambda v: metrics.mode_coverage(GM, v), ARRAY_KINDS),
    (
        "mode_coverage",
        "mass",
        lambda v: metrics.mode_coverage(GM, X, mass=v),
        ("str", "bool", "complex", "nan", "neg", "zero"),
    ),
    (
        "mode_coverage",
        "threshold",
        lambda v: metrics.mode_coverage(GM, X, threshold=v),
        ("str", "bool", "complex", "nan", "neg", "zero"),
    ),
    # --- sampling ---
    ("edm_sigmas", "sigma_min", lambda v: sampling.edm_sigmas(8, sigma_min=v), SCALAR_POS),
    ("edm_sigmas", "rho", lambda v: sampling.edm_sigmas(8, rho=v), SCALAR_POS),
    ("edm_sigmas", "num_steps", lambda v: sampling.edm_sigmas(v), COUNT),
    (
        "geometric_sigmas",
        "sigma_max",
        lambda v: sampling.geometric_sigmas(8, sigma_max=v),
        SCALAR_POS,
    ),
    (
        "heun_pf_ode",
        "x_init",
        lambda v: sampling.heun_pf_ode(lambda x, s: -x, v, sampling.edm_sigmas(4)),
        ("str", "bool_array", "complex_array", "object_array", "ragged", "none", "nan"),
    ),
    (
        "heun_pf_ode",
        "sigmas",
        lambda v: sampling.heun_pf_ode(lambda x, s: -x, X, v),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "sample_pf_ode",
        "num_samples",
        lambda v: sampling.sample_pf_ode(lambda x, s: -x, KEY, v, 2, num_steps=4),
        COUNT,
    ),
    (
        "sample_pf_ode",
        "dim",
        lambda v: sampling.sample_pf_ode(lambda x, s: -x, KEY, 4, v, num_steps=4),
        COUNT,
    ),
    # --- models ---
    ("init_mlp", "dim", lambda v: models.init_mlp(KEY, v), COUNT),
    ("init_mlp", "sigma_data", lambda v: models.init_mlp(KEY, 2, sigma_data=v), SCALAR_POS),
    ("init_mlp", "key", lambda v: models.init_mlp(v, 2), ("str", "bool", "none", "float")),
    (
        "noise_embedding",
        "lam",
        lambda v: models.noise_embedding(v, 4),
        ("str", "bool", "complex", "none", "nan"),
    ),
    ("noise_embedding", "embedding_dim", lambda v: models.noise_embedding(0.0, v), COUNT),
    (
        "widths_for_param_count",
        "target_params",
        lambda v: models.widths_for_param_count(2, v),
        COUNT,
    ),
    # --- adaptive ---
    (
        "kingma_gao_adaptive",
        "lam_min",
        lambda v: adaptive.kingma_gao_adaptive(v, 4.0),
        ("str", "bool", "complex", "none", "nan"),
    ),
    (
        "kingma_gao_adaptive",
        "decay",
        lambda v: adaptive.kingma_gao_adaptive(-4.0, 4.0, decay=v),
        ("str", "bool", "complex", "none", "nan", "neg"),
    ),
    (
        "kingma_gao_adaptive",
        "num_bins",
        lambda v: adaptive.kingma_gao_adaptive(-4.0, 4.0, num_bins=v),
        COUNT,
    ),
    # dim=None is legal (c* up to a constant, DESIGN.md's contract call)
    (
        "online_c_star",
        "dim",
        lambda v: adaptive.online_c_star(dim=v),
        tuple(k for k in COUNT if k != "none"),
    ),
    (
        "online_c_star",
        "decay",
        lambda v: adaptive.online_c_star(dim=2, decay=v),
        ("str", "bool", "complex", "none", "nan", "neg"),
    ),
    (
        "weighted_std",
        "weights",
        lambda v: adaptive.weighted_std([1.0, 2.0, 3.0], v),
        ("str", "bool", "complex", "none", "nan", "neg"),
    ),
    # --- sandwich ---
    (
        "random_fourier_model",
        "num_features",
        lambda v: dsm.sandwich.random_fourier_model(KEY, 2, v, 1.0),
        ("str", "bool", "none", "float", "neg_int"),
    ),
    (
        "random_fourier_model",
        "bandwidth",
        lambda v: dsm.sandwich.random_fourier_model(KEY, 2, 8, 1.0, v),
        SCALAR_POS,
    ),
    # --- expectations ---
    (
        "gauss_hermite_nodes",
        "num_nodes",
        lambda v: dsm.expectations.gauss_hermite_nodes(1, v),
        COUNT,
    ),
    (
        "expect",
        "rtol",
        lambda v: dsm.mmse(GM, 1.0, 0.5, rtol=v),
        ("str", "bool", "complex", "nan", "neg"),
    ),
    (
        "expect",
        "method",
        lambda v: dsm.mmse(GM, 1.0, 0.5, method=v),
        ("bool", "none", "complex", "float"),
    ),
    # --- training configurations ---
    ("TrainConfig", "learning_rate", lambda v: dsm.train.TrainConfig(learning_rate=v), SCALAR_POS),
    ("TrainConfig", "steps", lambda v: dsm.train.TrainConfig(steps=v), COUNT),
    ("TrainConfig", "sigma_min", lambda v: dsm.train.TrainConfig(sigma_min=v), SCALAR_POS),
    (
        "TrainConfig",
        "weighting",
        lambda v: dsm.train.TrainConfig(weighting=v),
        ("bool", "none", "complex", "float"),
    ),
    (
        "TrainConfig",
        "gamma",
        lambda v: dsm.train.TrainConfig(weighting="min_snr", weighting_params={"gamma": v}),
        ("str", "bool", "complex", "none", "nan", "neg"),
    ),
    ("EvalConfig", "num_bins", lambda v: dsm.train.EvalConfig(num_bins=v), COUNT),
]


def cases():
    """``(case id, call, value, expected error, argument name)`` for every entry × kind."""
    out = []
    for entry, arg, call, kinds in ENTRIES:
        for kind in kinds:
            value, exc = _kind(kind)
            out.append((f"{entry}:{arg}:{kind}", call, value, exc, arg))
    return out
