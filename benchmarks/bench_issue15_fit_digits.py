"""The 64-D digits mixture of issue 15's measurements: sklearn's GaussianMixture (K = 10, full
covariances, random_state 0) fitted to load_digits scaled to [-1, 1], written as a mixture
JSON. Needs scikit-learn (not a dependency of dsmtheory).

Usage: python benchmarks/bench_issue15_fit_digits.py OUT.json
"""

import sys

from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture

import dsmtheory as dsm

X = load_digits().data / 8.0 - 1.0
g = GaussianMixture(10, covariance_type="full", random_state=0).fit(X)
gm = dsm.GaussianMixture(g.weights_, g.means_, g.covariances_)
with open(sys.argv[1], "w") as f:
    f.write(dsm.to_json(gm))
