r"""Rank-deficient mixtures (issue 14 item 1): zero eigenvalues accepted and exact, the
conventions for the infinite quantities of $p_0$ (the limit of $\Sigma_k+\varepsilon I$ as
$\varepsilon\to0^+$), and the analyses of $p_t$ against closed forms derived here.

Closed forms (derived in this docstring; the tests compute the integrals independently with
scipy.integrate):

* **Two atoms** $p_0=\pi\,\delta_{c+au}+(1-\pi)\,\delta_{c-au}$ ($\|u\|=1$). Then
  $p_t=\pi N(\alpha(c+au),\sigma^2I)+(1-\pi)N(\alpha(c-au),\sigma^2I)$, the posterior of
  $x_0$ is on the two atoms with $r_+(x)=\mathrm{sigmoid}(L+2\alpha a\,y/\sigma^2)$,
  $L=\log\frac{\pi}{1-\pi}$, $y=u^\top(x-\alpha c)$ (the directions orthogonal to $u$ carry
  no information), and $\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t)=4a^2r_+r_-
  =a^2\,\mathrm{sech}^2(\mathrm{logit}/2)$. Given the + atom, $y=\alpha a+\sigma\varepsilon$
  and $\mathrm{logit}=L+2s^2+2s\varepsilon$ with $s=\alpha a/\sigma$; given the − atom
  $\mathrm{logit}=L-2s^2+2s\varepsilon$. Hence
  $$\mathrm{mmse}=a^2\,\mathbb E_\varepsilon\Big[\pi\,\mathrm{sech}^2\big(\tfrac L2+s^2+s
  \varepsilon\big)+(1-\pi)\,\mathrm{sech}^2\big(\tfrac L2-s^2+s\varepsilon\big)\Big],$$
  a 1-D integral; $d_{\rm eff}=\alpha^2\mathrm{mmse}/\sigma^2$ and $c^*=D/d_{\rm eff}$. For
  $\pi=\tfrac12$ it is the BPSK formula $\mathrm{mmse}/a^2=1-\mathbb E\tanh(s^2+s\varepsilon)$
  (a second, independent form: $\mathbb E\tanh=\mathbb E\tanh^2$ at the matched SNR).
* **K atoms in the plane**: $\mathrm{mmse}=\sum_k\pi_k\,\mathbb E_{\varepsilon\sim N(0,I_2)}
  \big[\sum_jr_j\|\mu_j-\bar m\|^2\big]$ at $x=\alpha\mu_k+\sigma\varepsilon$, with $r_j\propto
  \pi_je^{-\|x-\alpha\mu_j\|^2/2\sigma^2}$ and $\bar m=\sum_jr_j\mu_j$: a 2-D integral per atom.
* **A Gaussian of rank r** in D dimensions, eigenvalues $e_1..e_r>0$: the posterior is
  Gaussian with $\mathrm{tr}\,V=\sum_ie_i\sigma^2/(\alpha^2e_i+\sigma^2)$ at every $x_t$, so
  $d_{\rm eff}=\sum_{i\le r}\frac{\alpha^2e_i}{\alpha^2e_i+\sigma^2}\to r$ and
  $c^*=D/d_{\rm eff}\to D/r$ as σ → 0.
* **Lines** (rank-1 components): $d_{\rm eff}\to\bar d=1$, so $c^*(0^+)=D/\bar d=2$ in the
  plane. Parallel lines have no region where the components compete (up to $e^{-O(1/\sigma^2)}$),
  so $d_{\rm eff}=\sum_k\pi_ke_k/(e_k+\sigma^2)$ up to that; lines that cross add an $O(\sigma)$
  excess from the $\sigma\times\sigma$ neighbourhoods of the crossings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy.stats import multivariate_normal
from tolerances import EXACT_RTOL, Z_BOUND

import dsmtheory as dsm
from dsmtheory import optimal, variance
from dsmtheory.mixture import RANK_RTOL, GaussianMixture

# The engine's adaptive rule meets rtol 1e-10 on these integrands; the scipy reference
# integrals are asked for 1e-12 and agree with each other to ~1e-13. 1e-9 leaves margin
# for the two quadratures' combined error.
QUAD_RTOL = 1e-9


def _rot(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _line(theta, e):
    u = np.array([np.cos(theta), np.sin(theta)])
    return e * np.outer(u, u)


def _regularised(gm: GaussianMixture, eps: float) -> GaussianMixture:
    """The same mixture with covariances Σ_k + eps I (full rank): the limit's reference.
    eps must exceed RANK_RTOL times the largest eigenvalue, or it would be read as 0."""
    assert eps > 10 * RANK_RTOL * float(np.max(np.asarray(gm.eigvals)))
    return GaussianMixture(
        np.asarray(gm.weights), np.asarray(gm.means), np.asarray(gm.covs) + eps * np.eye(gm.dim)
    )


# ---------------------------------------------------------------------------------------
# construction: zero eigenvalues are exact zeros, negatives are refused
# ---------------------------------------------------------------------------------------
def test_full_covariance_with_exact_zero_eigenvalues():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    e = np.array([0.0, 0.0, 0.3, 1.0, 2.5])
    cov = (q * e) @ q.T
    cov = 0.5 * (cov + cov.T)
    # rounding leaves eigh's eigenvalues within ~1e-16 of 0 (check the premise)
    raw = np.linalg.eigvalsh(cov)
    assert np.max(np.abs(raw[:2])) < 1e-14 and np.any(raw[:2] != 0.0)
    gm = GaussianMixture([0.4, 0.6], rng.standard_normal((2, 5)), np.stack([cov, np.eye(5)]))
    ev = np.asarray(gm.eigvals)
    assert np.all(ev[0, :2] == 0.0)
    np.testing.assert_allclose(ev[0, 2:], e[2:], rtol=1e-12)
    assert gm.rank_deficient
    np.testing.assert_array_equal(np.asarray(gm.ranks), [3, 5])
    assert optimal.mean_rank(gm) == pytest.approx(0.4 * 3 + 0.6 * 5, rel=1e-15)
    np.testing.assert_allclose(np.asarray(gm.covs)[0], cov, atol=1e-14)


def test_tolerance_boundary_is_relative_to_the_largest_eigenvalue():
    # 5e-13 and -5e-13 of the largest are zeros; 2e-12 stays; -2e-12 is refused
    gm = GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [[4.0, 4 * 5e-13, 4 * 2e-12]])
    np.testing.assert_array_equal(np.asarray(gm.eigvals)[0], [4.0, 0.0, 8e-12])
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [[4.0, -4 * 5e-13]])
    np.testing.assert_array_equal(np.asarray(gm.eigvals)[0], [4.0, 0.0])
    with pytest.raises(ValueError, match=r"covs\[0\].*component 0"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[4.0, -4 * 2e-12]])
    assert RANK_RTOL == 1e-12


def test_diagonal_and_isotropic_zeros_atoms():
    gm = GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]])
    assert gm.diagonal and gm.rank_deficient
    np.testing.assert_array_equal(np.asarray(gm.ranks), [1, 0])
    atoms = GaussianMixture([0.25, 0.75], [[0.0], [3.0]], [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(atoms.eigvals), [[0.0], [0.0]])
    assert optimal.mean_rank(atoms) == 0.0


def test_negative_eigenvalue_refused_naming_component():
    bad = np.array([[1.0, 0.0], [0.0, -1e-3]])
    with pytest.raises(ValueError, match=r"covs\[1\] is not positive semi-definite \(component 1"):
        GaussianMixture(
            [0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2), _rot(0.3) @ bad @ _rot(0.3).T]
        )
    with pytest.raises(ValueError, match=r"covs\[0\].*>= 0"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[-0.1, 1.0]])
    with pytest.raises(ValueError, match=r"covs\[0\].*>= 0"):
        GaussianMixture([1.0], [[0.0]], [-1e-300])


def test_from_eig_with_zeros_and_refusals():
    u = np.stack([_rot(0.4), _rot(-1.0)])
    gm = dsm.GaussianMixture.from_eig(
        [0.5, 0.5], [[0.0, 0.0], [1.0, 0.0]], [[0.0, 2.0], [1e-14, 1.0]], u
    )
    np.testing.assert_array_equal(np.asarray(gm.eigvals), [[0.0, 2.0], [0.0, 1.0]])
    assert gm.rank_deficient and not gm.diagonal
    ref = GaussianMixture(
        [0.5, 0.5],
        [[0.0, 0.0], [1.0, 0.0]],
        [
            _rot(0.4) @ np.diag([0.0, 2.0]) @ _rot(0.4).T,
            _rot(-1.0) @ np.diag([0.0, 1.0]) @ _rot(-1.0).T,
        ],
    )
    np.testing.assert_allclose(np.asarray(gm.covs), np.asarray(ref.covs), atol=1e-15)
    axis = dsm.GaussianMixture.from_eig([1.0], [[0.0, 0.0]], [[0.0, 1.0]])
    assert axis.diagonal and axis.rank_deficient
    with pytest.raises(ValueError, match=r"eigvals\[1\].*component 1"):
        dsm.GaussianMixture.from_eig([0.5, 0.5], [[0.0], [1.0]], [[1.0], [-0.5]])
    with pytest.raises(ValueError, match=r"eigvecs\[0\].*orthonormal"):
        dsm.GaussianMixture.from_eig([1.0], [[0.0, 0.0]], [[1.0, 1.0]], [[[1.0, 1.0], [0.0, 1.0]]])


def test_json_round_trip_keeps_exact_zeros(tmp_path):
    gm = GaussianMixture(
        [0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [_line(0.7, 2.0), np.diag([0.0, 0.0])]
    )
    back = dsm.from_json(dsm.to_json(gm))
    np.testing.assert_array_equal(np.asarray(back.ranks), [1, 0])
    assert np.all(np.asarray(back.eigvals)[:, 0] == 0.0)
    path = tmp_path / "m.json"
    path.write_text(dsm.to_json(gm))
    np.testing.assert_array_equal(np.asarray(dsm.from_json(path).ranks), [1, 0])


# ---------------------------------------------------------------------------------------
# p_t is full rank and ordinary
# ---------------------------------------------------------------------------------------
def test_noised_is_full_rank_and_matches_scipy():
    gm = GaussianMixture([0.3, 0.7], [[0.0, 0.0], [2.0, -1.0]], [_line(0.4, 1.5), np.zeros((2, 2))])
    pt = gm.noised(0.8, 0.2)
    assert not pt.rank_deficient
    np.testing.assert_array_equal(np.asarray(pt.ranks), [2, 2])
    x = np.random.default_rng(1).standard_normal((6, 2))
    covs = 0.64 * np.asarray(gm.covs) + 0.04 * np.eye(2)
    ref = np.log(
        0.3 * multivariate_normal(0.8 * np.array([0.0, 0.0]), covs[0]).pdf(x)
        + 0.7 * multivariate_normal(0.8 * np.array([2.0, -1.0]), covs[1]).pdf(x)
    )
    np.testing.assert_allclose(np.asarray(pt.log_prob(x)), ref, rtol=EXACT_RTOL)
    # posterior moments of a rank-deficient p0 vs Tweedie through the noised score
    m = np.asarray(dsm.posterior_mean(gm, x, 0.8, 0.2))
    np.testing.assert_allclose(
        m, (x + 0.04 * np.asarray(pt.score(x))) / 0.8, rtol=1e-10, atol=1e-12
    )
    cov = np.asarray(dsm.posterior_cov(gm, x, 0.8, 0.2))
    ref_cov = 0.04 / 0.64 * (np.eye(2) + 0.04 * np.asarray(pt.hessian(x)))
    np.testing.assert_allclose(cov, ref_cov, atol=1e-12)
    np.testing.assert_allclose(
        np.asarray(dsm.posterior_cov_trace(gm, x, 0.8, 0.2)),
        np.trace(cov, axis1=-2, axis2=-1),
        rtol=1e-12,
    )


def test_sigma_underflow_refused_for_rank_deficient():
    gm = GaussianMixture([1.0], [[0.0]], [0.0])
    with pytest.raises(ValueError, match="sigma.*underflows"):
        gm.noised(1.0, 1e-170)
    # a full-rank mixture is fine there (S = alpha^2 Sigma)
    assert np.isfinite(
        float(dsm.single_gaussian([0.0], 1.0).noised(1.0, 1e-170).log_prob(np.array([0.1])))
    )


# ---------------------------------------------------------------------------------------
# the conventions for p0 itself: limits of Sigma_k + eps I, never NaN
# ---------------------------------------------------------------------------------------
def test_atoms_log_prob_score_hessian():
    atoms = GaussianMixture([0.5, 0.5], [[0.0, 0.0], [2.0, 1.0]], [0.0, 0.0])
    x = np.array([[0.0, 0.0], [2.0, 1.0], [1.5, 1.0]])
    lp = np.asarray(atoms.log_prob(x))
    assert lp[0] == np.inf and lp[1] == np.inf and lp[2] == -np.inf
    np.testing.assert_array_equal(np.asarray(atoms.responsibilities(x)), [[1, 0], [0, 1], [0, 1]])
    s = np.asarray(atoms.score(x))
    np.testing.assert_array_equal(s[:2], 0.0)  # the score within a point is 0
    np.testing.assert_array_equal(s[2], [np.inf, 0.0])  # towards the nearest atom (2, 1)
    h = np.asarray(atoms.hessian(x))
    np.testing.assert_array_equal(h[0], [[-np.inf, 0.0], [0.0, -np.inf]])
    np.testing.assert_array_equal(np.asarray(atoms.component_log_prob(x))[0], [np.inf, -np.inf])


def test_limit_conventions_against_regularised_mixture():
    """On an axis-aligned line (exact zeros off the support), the limit values equal those
    of the mixture with Σ + eps I up to O(sqrt(eps)) (the full-rank component's share of
    the responsibility on the line is ~sqrt(2 pi eps) times a density ratio: 1e-5 here);
    off the support with a full-rank component, the log-density is that of the full-rank
    part."""
    gm = GaussianMixture([0.4, 0.6], [[0.0, 1.0], [1.0, -1.0]], [[2.0, 0.0], [1.0, 0.5]])
    eps = 1e-10
    reg = _regularised(gm, eps)
    on = np.array([[0.3, 1.0], [-1.2, 1.0], [2.0, 1.0]])  # on the line y = 1
    assert np.all(np.asarray(gm.log_prob(on)) == np.inf)
    np.testing.assert_allclose(
        np.asarray(gm.responsibilities(on)), np.asarray(reg.responsibilities(on)), atol=1e-4
    )
    assert np.all(np.asarray(reg.responsibilities(on))[:, 1] > 0)  # the premise: not exact
    np.testing.assert_allclose(np.asarray(gm.score(on)), np.asarray(reg.score(on)), atol=1e-4)
    h, hr = np.asarray(gm.hessian(on)), np.asarray(reg.hessian(on))
    assert np.all(h[:, 1, 1] == -np.inf) and np.all(hr[:, 1, 1] < -1e9)
    np.testing.assert_allclose(h[:, 0, 0], hr[:, 0, 0], atol=1e-4)
    np.testing.assert_allclose(h[:, 0, 1], hr[:, 0, 1], atol=1e-4)
    off = np.array([[0.3, 1.5], [3.0, -2.0]])
    full_part = np.log(0.6) + multivariate_normal([1.0, -1.0], np.diag([1.0, 0.5])).logpdf(off)
    np.testing.assert_allclose(np.asarray(gm.log_prob(off)), full_part, rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(gm.log_prob(off)), np.asarray(reg.log_prob(off)), rtol=1e-9
    )
    np.testing.assert_allclose(np.asarray(gm.score(off)), np.asarray(reg.score(off)), rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(gm.responsibilities(off))[:, 0], 0.0)


def test_lowest_rank_dominates_on_a_shared_support():
    """A point mass on a line: at the atom, the atom (rank 0) takes all the responsibility
    (its limit density grows like eps^-1 against eps^-1/2)."""
    gm = GaussianMixture([0.9, 0.1], [[0.0, 0.0], [0.5, 0.0]], [[1.0, 0.0], [0.0, 0.0]])
    r = np.asarray(gm.responsibilities(np.array([[0.5, 0.0], [0.2, 0.0]])))
    np.testing.assert_array_equal(r, [[0.0, 1.0], [1.0, 0.0]])
    # regularised: the atom's density ~ 0.1/(2 pi eps), the line's ~ 0.9 phi/sqrt(2 pi eps)
    reg = _regularised(gm, 1e-10)
    assert float(reg.responsibilities(np.array([0.5, 0.0]))[1]) > 1 - 1e-3


@pytest.mark.slow
def test_rotated_line_samples_are_on_the_support_and_nothing_is_nan():
    gm = GaussianMixture([0.3, 0.7], [[0.0, 0.0], [0.0, 3.0]], [_line(0.3, 2.0), _line(1.2, 1.0)])
    x = np.asarray(gm.sample(jax.random.PRNGKey(0), 400))
    assert np.all(np.asarray(gm.log_prob(x)) == np.inf)
    s, h = (np.asarray(a) for a in gm.score_and_hessian(x))
    assert np.all(np.isfinite(s))
    assert not np.any(np.isnan(h))
    # on line 1 (responsibility 1 there): H = -inf * u_perp u_perp^T, signs of the projector
    u_perp = np.array([-np.sin(0.3), np.cos(0.3)])
    r = np.asarray(gm.responsibilities(x))
    i = int(np.argmax(r[:, 0]))
    np.testing.assert_array_equal(np.sign(h[i]), -np.sign(np.outer(u_perp, u_perp)))
    # random points anywhere: never NaN in any method
    y = 3.0 * np.random.default_rng(2).standard_normal((200, 2))
    for out in (
        gm.log_prob(y),
        gm.score(y),
        gm.hessian(y),
        gm.responsibilities(y),
        gm.hessian_diagonal(y),
        gm.hessian_vector_product(y, y),
    ):
        assert not np.any(np.isnan(np.asarray(out)))
    hd = np.asarray(gm.hessian_diagonal(y))
    np.testing.assert_array_equal(hd, np.diagonal(np.asarray(gm.hessian(y)), axis1=-2, axis2=-1))


def test_sampling_moments_of_a_rank_deficient_mixture():
    gm = GaussianMixture([0.3, 0.7], [[0.0, 0.0], [1.0, 3.0]], [_line(0.3, 2.0), np.zeros((2, 2))])
    n = 40_000
    x = np.asarray(gm.sample(jax.random.PRNGKey(5), n))
    mean = x.mean(0)
    se = x.std(0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(mean - np.asarray(gm.mean())) <= Z_BOUND * se)
    # the atom's draws are exactly the atom
    at = np.all(x == np.array([1.0, 3.0]), axis=1)
    frac_se = np.sqrt(0.7 * 0.3 / n)
    assert abs(at.mean() - 0.7) <= Z_BOUND * frac_se
    cov = np.cov(x.T)
    np.testing.assert_allclose(cov, np.asarray(gm.covariance()), atol=0.05)


# ---------------------------------------------------------------------------------------
# infinite Fisher information, no TSM target
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_fisher_of_rank_deficient_p0_is_inf():
    gm = GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [_line(0.3, 1.0), np.eye(2)])
    est = variance.fisher_trace(gm)
    assert est.value == np.inf and est.stderr == 0.0 and est.method == "closed_form"
    assert optimal.small_noise_fisher(gm) == np.inf
    with pytest.raises(ValueError, match="rank-deficient"):
        variance.fisher_information(gm)
    # the noised law is ordinary, and tr I_t grows like (D - d_bar) / sigma^2 as sigma -> 0
    for s in (1e-2, 1e-3):
        t = variance.fisher_trace(gm.noised(1.0, s)).value
        assert np.isfinite(t) and 0.5 / s**2 * 0.9 < t < 0.5 / s**2 * 1.1 + 10


def test_tsm_refuses_rank_deficient():
    from dsmtheory import targets

    gm = GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 0.0]])
    with pytest.raises(ValueError, match="rank-deficient.*TSM"):
        targets.tsm_target(gm, np.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match="rank-deficient"):
        targets.tsm_moments(gm, 1.0, 0.5, num_outer=4, num_inner=2)


# ---------------------------------------------------------------------------------------
# closed forms for the analyses of p_t
# ---------------------------------------------------------------------------------------
def _two_atom_mmse(a, pi, alpha, sigma):
    s = alpha * a / sigma
    half_l = 0.5 * np.log(pi / (1 - pi))

    def f(eps):
        phi = np.exp(-0.5 * eps * eps) / np.sqrt(2 * np.pi)
        return phi * (
            pi / np.cosh(half_l + s * s + s * eps) ** 2
            + (1 - pi) / np.cosh(half_l - s * s + s * eps) ** 2
        )

    val, _ = integrate.quad(f, -40, 40, epsabs=0, epsrel=1e-13, limit=400, points=[-s, s])
    return a * a * val


def _bpsk_mmse(a, alpha, sigma):
    s = alpha * a / sigma

    def f(eps):
        return np.exp(-0.5 * eps * eps) / np.sqrt(2 * np.pi) * np.tanh(s * s + s * eps)

    val, _ = integrate.quad(f, -40, 40, epsabs=0, epsrel=1e-13, limit=400, points=[-s])
    return a * a * (1.0 - val)


def test_two_atom_closed_form_forms_agree():
    for sigma in (0.3, 1.0, 3.0):
        np.testing.assert_allclose(
            _two_atom_mmse(1.2, 0.5, 1.0, sigma), _bpsk_mmse(1.2, 1.0, sigma), rtol=1e-11
        )


@pytest.mark.parametrize("alpha,sigma", [(1.0, 0.25), (1.0, 1.0), (0.8, 0.6), (1.0, 4.0)])
def test_two_atoms_engine_against_closed_form(alpha, sigma):
    a, pi = 1.5, 0.3
    u = np.array([np.cos(0.6), np.sin(0.6)])
    c = np.array([0.4, -0.2])
    gm = GaussianMixture([pi, 1 - pi], [c + a * u, c - a * u], [0.0, 0.0])
    ref = _two_atom_mmse(a, pi, alpha, sigma)
    est = variance.mmse(gm, alpha, sigma)  # method "auto": adaptive in D = 2
    np.testing.assert_allclose(est.value, ref, rtol=QUAD_RTOL)
    d_ref = alpha**2 * ref / sigma**2
    np.testing.assert_allclose(
        variance.effective_dimension(gm, alpha, sigma).value, d_ref, rtol=QUAD_RTOL
    )
    np.testing.assert_allclose(
        optimal.homoskedastic_multiplier(gm, alpha, sigma).value, 2 / d_ref, rtol=QUAD_RTOL
    )


@pytest.mark.slow
def test_three_atoms_in_the_plane_engine_against_2d_integral():
    w = np.array([0.2, 0.5, 0.3])
    mu = np.array([[0.0, 0.0], [1.5, 0.5], [-0.5, 1.2]])
    gm = GaussianMixture(w, mu, [0.0, 0.0, 0.0])
    alpha, sigma = 1.0, 0.7

    def post_var(x):
        logit = np.log(w) - np.sum((x - alpha * mu) ** 2, axis=1) / (2 * sigma**2)
        r = np.exp(logit - logit.max())
        r /= r.sum()
        m = r @ mu
        return float(r @ np.sum((mu - m) ** 2, axis=1))

    ref = 0.0
    for k in range(3):

        def f(e2, e1, k=k):
            phi = np.exp(-0.5 * (e1 * e1 + e2 * e2)) / (2 * np.pi)
            return phi * post_var(alpha * mu[k] + sigma * np.array([e1, e2]))

        val, _ = integrate.dblquad(f, -9, 9, -9, 9, epsabs=1e-14, epsrel=1e-12)
        ref += w[k] * val
    est = variance.mmse(gm, alpha, sigma)
    np.testing.assert_allclose(est.value, ref, rtol=QUAD_RTOL)
    np.testing.assert_allclose(
        optimal.homoskedastic_multiplier(gm, alpha, sigma).value,
        2 * sigma**2 / (alpha**2 * ref),
        rtol=QUAD_RTOL,
    )


@pytest.mark.parametrize("dim,rank", [(2, 1), (3, 2), (5, 3)])
def test_rank_r_gaussian_d_eff_and_c_star_limit(dim, rank):
    """d_eff = sum_i e_i/(e_i + sigma^2/alpha^2) exactly, -> r; c* -> D/r. Method "auto":
    adaptive (D = 2), Gauss-Hermite (D = 3), Monte Carlo (D = 5, whose integrand is
    constant here, so exact to rounding)."""
    rng = np.random.default_rng(dim)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    e = np.zeros(dim)
    e[:rank] = rng.uniform(0.3, 2.0, rank)
    gm = GaussianMixture([1.0], rng.standard_normal((1, dim)), ((q * e) @ q.T)[None])
    assert int(gm.ranks[0]) == rank
    for sigma in (1.0, 1e-2, 1e-4, 1e-6):
        d_ref = float(np.sum(e[:rank] / (e[:rank] + sigma**2)))
        d = variance.effective_dimension(gm, 1.0, sigma).value
        np.testing.assert_allclose(d, d_ref, rtol=1e-9)
        np.testing.assert_allclose(
            optimal.homoskedastic_multiplier(gm, 1.0, sigma).value, dim / d_ref, rtol=1e-9
        )
    assert abs(optimal.homoskedastic_multiplier(gm, 1.0, 1e-6).value - dim / rank) < 1e-9 * dim


def test_c_star_low_noise_limit_on_parallel_lines():
    """Three parallel lines (rank 1, D = 2): c*(sigma) = 2 / sum_k pi_k e_k/(e_k + sigma^2)
    up to e^{-O(1/sigma^2)}, -> D / d_bar = 2."""
    w = np.array([0.2, 0.5, 0.3])
    e = np.array([1.0, 0.5, 2.0])
    theta = 0.4
    normal = np.array([-np.sin(theta), np.cos(theta)])
    mu = np.array([0.0, 1.0, -1.3])[:, None] * normal + np.array(
        [[0.0, 0.0], [0.5, 0.2], [1.0, -0.4]]
    )
    gm = GaussianMixture(w, mu, [_line(theta, ek) for ek in e])
    assert optimal.mean_rank(gm) == 1.0
    for sigma in (1e-4, 1e-5, 1e-6):
        ref = 2.0 / float(w @ (e / (e + sigma**2)))
        np.testing.assert_allclose(
            optimal.homoskedastic_multiplier(gm, 1.0, sigma).value, ref, rtol=1e-9
        )
    np.testing.assert_allclose(
        optimal.homoskedastic_multiplier(gm, 1.0, 1e-6).value, 2.0, rtol=1e-11
    )


def _crossing_lines():
    return GaussianMixture(
        [0.3, 0.5, 0.2],
        [[0.0, 0.0], [1.0, 0.5], [-1.0, 1.0]],
        [_line(0.2, 1.0), _line(1.3, 0.5), _line(2.5, 2.0)],
    )


def test_c_star_low_noise_limit_on_crossing_lines_monte_carlo():
    """Crossing lines: c*(sigma) -> D/d_bar = 2 with an O(sigma) gap from the crossings:
    (c* - 2)/sigma stays bounded (measured about -3.3) while sigma falls 100-fold. Monte
    Carlo with standard errors (see the next test for why not "auto")."""
    gm = _crossing_lines()
    ratios = []
    for sigma in (1e-3, 1e-4, 1e-5):
        est = optimal.homoskedastic_multiplier(
            gm, 1.0, sigma, method="monte_carlo", num_samples=100_000, key=jax.random.PRNGKey(3)
        )
        assert abs(est.value - 2.0) <= 10 * sigma + Z_BOUND * est.stderr
        ratios.append((est.value - 2.0) / sigma)
    assert est.stderr < 1e-4
    assert abs(est.value - 2.0) < 1e-4


def test_auto_rule_sees_the_crossings_of_lines():
    """The sigma-wide crossings of thin components: "adaptive" cuts its first cells at the
    boxes where a thinner component meets each one (expectations.THIN_SCALE); without the cuts
    it returned the within-component value 2.0000028 against 1.99672 +- 0.00013."""
    gm = _crossing_lines()
    auto = optimal.homoskedastic_multiplier(gm, 1.0, 1e-3)
    mc = optimal.homoskedastic_multiplier(
        gm, 1.0, 1e-3, method="monte_carlo", num_samples=100_000, key=jax.random.PRNGKey(3)
    )
    assert abs(auto.value - mc.value) <= Z_BOUND * mc.stderr


def test_atom_plus_gaussian_c_star_limit():
    """An atom of weight 0.4 beside a full-rank 1-D Gaussian: d_bar = 0.6, c*(0+) = 1/0.6.
    Far apart, d_eff = 0.6 e/(e + sigma^2) up to e^{-O(1/sigma^2)}."""
    gm = GaussianMixture([0.4, 0.6], [[0.0], [10.0]], [0.0, 0.5])
    for sigma in (1e-2, 1e-4):
        ref = 1.0 / (0.6 * 0.5 / (0.5 + sigma**2))
        np.testing.assert_allclose(
            optimal.homoskedastic_multiplier(gm, 1.0, sigma).value, ref, rtol=1e-9
        )
    assert optimal.mean_rank(gm) == pytest.approx(0.6)


def test_curve_and_traced_noising_of_rank_deficient():
    # parallel lines, 4 apart: c*(sigma) = 2 (1 + sigma^2) up to e^{-O(1/sigma^2)}
    gm = GaussianMixture([0.5, 0.5], [[0.0, 0.0], [0.0, 4.0]], [_line(0.0, 1.0), _line(0.0, 1.0)])
    sig = np.array([1e-3, 1e-2, 1e-1])
    c = optimal.c_star_curve(gm, sig)
    np.testing.assert_allclose(c, 2.0 * (1.0 + sig**2), rtol=1e-9)
    laws = jax.vmap(gm.noised)(jnp.ones(3), jnp.asarray(sig))
    assert not laws.rank_deficient
    assert np.all(np.isfinite(np.asarray(jax.vmap(lambda g: g.log_prob(jnp.zeros(2)))(laws))))


def _clipped_64d(sigma_floor: float = 1e-6):
    """A 64-D mixture like a clipped fit: K = 3 components of ranks 10, 20, 5 (eigenvalues
    in [0.05, 1]), the rest at a regularisation floor clipped to exactly 0, means 3 apart."""
    rng = np.random.default_rng(64)
    d, ranks = 64, (10, 20, 5)
    w = np.array([0.5, 0.3, 0.2])
    mu = 3.0 * rng.standard_normal((3, d))
    covs, eig = [], []
    for r in ranks:
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        e = np.full(d, sigma_floor)
        e[:r] = rng.uniform(0.05, 1.0, r)
        e[r:] = 0.0  # the floor, clipped (covs formed from it carry ~1e-17 rounding)
        covs.append((q * e) @ q.T)
        eig.append(e)
    return GaussianMixture(w, mu, np.stack(covs)), w, np.stack(eig), ranks


def test_c_star_low_noise_limit_on_a_clipped_64d_mixture():
    """c*(0+) = D/d_bar in D = 64: d_bar = 0.5*10 + 0.3*20 + 0.2*5 = 12, c* -> 16/3. Far
    apart (3 standard deviations of the means, in 64-D: distances ~ 34), d_eff equals the
    within-component sum_k pi_k sum_i e_i/(e_i + sigma^2) up to e^{-O(1/sigma^2)}, and the
    Monte Carlo integrand is constant per component (standard error ~ rounding)."""
    gm, w, e, ranks = _clipped_64d()
    assert np.asarray(gm.ranks).tolist() == list(ranks)
    d_bar = float(w @ np.array(ranks))
    assert optimal.mean_rank(gm) == pytest.approx(d_bar)
    opts = {"method": "monte_carlo", "num_samples": 500, "key": jax.random.PRNGKey(0)}
    for sigma in (1e-2, 1e-4):
        ref = float(w @ np.sum(e / (e + sigma**2), axis=-1))
        est = variance.effective_dimension(gm, 1.0, sigma, **opts)
        assert abs(est.value - ref) <= Z_BOUND * est.stderr + 1e-9 * ref
        c = optimal.homoskedastic_multiplier(gm, 1.0, sigma, **opts)
        np.testing.assert_allclose(c.value, 64 / ref, rtol=1e-9)
    assert abs(c.value - 64 / d_bar) < 1e-6  # sigma^2 / e_min = 2e-7 relative


def test_c_star_low_noise_limit_low_rank_kind_with_zero_diagonal():
    """The low-rank kind with diag = 0 (components of rank r_k = 3, 6 in D = 64, sigma on
    the same factors): d_eff -> sum_k pi_k r_k = 4.2, c* -> 64/4.2, by the engine's Monte
    Carlo rule mapping r + D latent coordinates; against the dense kind of the same
    mixture (rank-deficient, exact zeros) at the same sigma."""
    rng = np.random.default_rng(65)
    d, r = 64, 6
    f = rng.standard_normal((2, d, r)) * rng.uniform(0.3, 1.0, (2, 1, r))
    f[0, :, 3:] = 0.0  # component 0 has rank 3
    w = np.array([0.6, 0.4])
    lr = GaussianMixture.from_low_rank(w, 3.0 * rng.standard_normal((2, d)), f, [0.0, 0.0])
    assert np.asarray(lr.ranks).tolist() == [3, 6] and lr.rank_deficient
    de = lr.to_dense()
    assert np.asarray(de.ranks).tolist() == [3, 6]
    opts = {"method": "monte_carlo", "num_samples": 500, "key": jax.random.PRNGKey(1)}
    sigma = 1e-3
    sv2 = np.linalg.svd(f, compute_uv=False) ** 2  # the nonzero eigenvalues of F Fᵀ
    ref = float(w @ np.sum(sv2 / (sv2 + sigma**2), axis=-1))
    for gm in (lr, de):
        est = variance.effective_dimension(gm, 1.0, sigma, **opts)
        # Woodbury at gamma_max ~ |F|^2/sigma^2 ~ 1e7: rounding ~ eps * gamma_max ~ 2e-9
        assert abs(est.value - ref) <= Z_BOUND * est.stderr + 1e-8 * ref, gm.kind
    assert abs(64 / ref - 64 / 4.2) < 1e-4
