"""Tolerances used across the test-suite, in one place, each with its reason."""

# Closed form vs an independent float64 computation of the same quantity (autodiff,
# scipy, a second formula): only rounding differs.
EXACT_RTOL = 1e-10
EXACT_ATOL = 1e-12

# Monte Carlo checks: |estimate - truth| <= Z_BOUND * standard error. 5 sigma keeps the
# false-failure rate below 1e-6 per check while still catching real errors.
Z_BOUND = 5.0

# Adaptive quadrature of the Fisher information against a second, independent rule.
QUAD_RTOL = 1e-10
