"""The kit's default tolerances, in one place, each with its reason."""

# assert_weighting / assert_equivalent / assert_loss: largest relative deviation of a user's
# multiplier (or loss) from dsmtheory's. A user's code often runs in float32 (torch), whose
# formulas carry a few units of 6e-8 each; 1e-5 leaves a wide margin for that rounding while
# every bug of the classes the kit targets (a formula for another parameterization, a min
# written as a max, a factor kappa or c_out^2 too many) is off by O(1) somewhere on the
# lambda range. Tests of float64 code pass rtol=1e-12 explicitly.
WEIGHT_RTOL = 1e-5

# identify_weighting: a registry weighting "fits" when, with its fitted parameters and
# constant, max |log(weights / model)| <= FIT_TOL over the user's points. Looser than
# WEIGHT_RTOL because the parameters come from a numerical least-squares fit (converged to
# ~1e-10 on exact data in the kit's tests) and because weights read from a CSV file are often
# printed to 6 significant digits (relative rounding 5e-7).
FIT_TOL = 1e-4

# assert_same_training: largest parameter difference of the two trajectories, relative to
# the largest distance the parameters travel from their initial values. Measured on the
# kit's default problem (ring of 8 modes, 60 and 200 Adam/SGD steps): weightings that differ
# by a constant agree to 7e-16..1.1e-15 in float64 and 3e-7..4e-7 in float32; Min-SNR
# against Soft-Min-SNR differs by 0.09..0.22 (float64) and 0.07..0.19 (float32). 1e-8 and
# 1e-3 sit orders of magnitude from both.
TRAIN_RTOL_F64 = 1e-8
TRAIN_RTOL_F32 = 1e-3
