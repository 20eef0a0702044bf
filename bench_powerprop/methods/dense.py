"""``dense``: plain training with no masks (Powerprop or not, by α).

Reference: the dense baselines of every paper here (Schwarz et al. 2021 §4; the official
Powerprop notebook, google-deepmind/deepmind-research ``powerpropagation/powerpropagation.ipynb``).
No deviations: the trainer's optimizer step is the whole method.
"""

from bench_powerprop.methods.base import METHODS, Method


@METHODS.register("dense")
class Dense(Method):
    pass
