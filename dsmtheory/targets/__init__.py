r"""Lower-variance regression targets beyond first-order DSM, with exact variances on mixtures.

Everything here is computed from the Tweedie posterior of a Gaussian mixture (FORMULAS.md §4):
given $x_t=\alpha x_0+\sigma\varepsilon$, $x_0\mid x_t$ is the mixture
$\sum_k r_k N(m_k, V_k)$, so every polynomial target in $x_0$ has exact conditional moments.
One module per concept:

* :mod:`~dsmtheory.targets.order_k`: order-$k$ DSM targets $h_k=\nabla^kq/q$ (Zhang et al.
  2025, FORMULAS.md §3 item 15), their exact conditional moments and irreducible variances;
* :mod:`~dsmtheory.targets.tsm`: target score matching and its variance-optimal mix with DSM
  (De Bortoli et al. 2024, FORMULAS.md §3 item 17);
* :mod:`~dsmtheory.targets.iwsm`: importance-weighted score matching (Wang et al. 2025,
  FORMULAS.md §3 item 16).

Every name is re-exported here, so ``dsm.targets.X`` works for each of them. Expectations
over $x_t$ come from :mod:`dsmtheory.expectations`.
"""

from ..expectations import Estimate as Estimate
from . import iwsm as iwsm
from . import order_k as order_k
from . import tsm as tsm
from ._common import SUPPORTED_ORDERS as SUPPORTED_ORDERS
from .iwsm import MAX_WEIGHT_RSE as MAX_WEIGHT_RSE
from .iwsm import MIN_WEIGHT_ESS as MIN_WEIGHT_ESS
from .iwsm import ON_DEGENERATE as ON_DEGENERATE
from .iwsm import IWSMComparison as IWSMComparison
from .iwsm import IWSMDegenerateError as IWSMDegenerateError
from .iwsm import balanced_proposal as balanced_proposal
from .iwsm import iwsm_log_weights as iwsm_log_weights
from .iwsm import iwsm_variance_comparison as iwsm_variance_comparison
from .iwsm import self_normalized_estimate as self_normalized_estimate
from .order_k import dsm_target as dsm_target
from .order_k import gaussian_inverse_variance_weight as gaussian_inverse_variance_weight
from .order_k import gaussian_target_variance as gaussian_target_variance
from .order_k import inverse_variance_weight as inverse_variance_weight
from .order_k import irreducible_target_variance as irreducible_target_variance
from .order_k import order2_gls_weight as order2_gls_weight
from .order_k import sample_posterior as sample_posterior
from .order_k import target_cov as target_cov
from .order_k import target_mean as target_mean
from .order_k import target_moments_1d as target_moments_1d
from .order_k import target_variance_trace as target_variance_trace
from .tsm import TSMMoments as TSMMoments
from .tsm import crossing_lambda as crossing_lambda
from .tsm import fisher_trace as fisher_trace
from .tsm import kappa_star as kappa_star
from .tsm import kappa_star_gaussian as kappa_star_gaussian
from .tsm import mix_variance as mix_variance
from .tsm import mixed_target as mixed_target
from .tsm import tsm_moments as tsm_moments
from .tsm import tsm_target as tsm_target

__all__ = [
    "SUPPORTED_ORDERS",
    "Estimate",
    "TSMMoments",
    "IWSMComparison",
    "IWSMDegenerateError",
    "MIN_WEIGHT_ESS",
    "MAX_WEIGHT_RSE",
    "ON_DEGENERATE",
    "order_k",
    "tsm",
    "iwsm",
    "dsm_target",
    "target_mean",
    "target_cov",
    "target_variance_trace",
    "target_moments_1d",
    "sample_posterior",
    "irreducible_target_variance",
    "inverse_variance_weight",
    "order2_gls_weight",
    "gaussian_target_variance",
    "gaussian_inverse_variance_weight",
    "tsm_target",
    "mixed_target",
    "fisher_trace",
    "kappa_star",
    "kappa_star_gaussian",
    "mix_variance",
    "crossing_lambda",
    "tsm_moments",
    "iwsm_log_weights",
    "self_normalized_estimate",
    "iwsm_variance_comparison",
    "balanced_proposal",
]
