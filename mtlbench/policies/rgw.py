"""Random gradient weighting (RGW), Lin et al. (2022), Section 3 and Algorithm 2.

Every step draws ``lambda = softmax(z)``, ``z ~ N(0, I)`` (or any distribution of
:mod:`mtlbench.policies.rlw`), and combines the per-task gradients of the shared
*representation* as ``sum_t T lambda_t g_t`` (``wrt = "representation"``: "we compute the
gradient with respect to the final hidden feature representation ... to reduce the
computational cost", Section 3). Task-specific heads get their own unweighted gradients
(Algorithm 2, line 10). The factor ``T`` is EW's scale (:mod:`mtlbench.policies.ew`); LibMTL
(``RGW.py``) uses ``lambda`` alone.

RGW needs only the losses: the env forms ``sum_t a_t g_t`` itself from the weights.
"""

from __future__ import annotations

from mtlbench.policies.base import GradientWeights, Observation
from mtlbench.policies.rlw import RandomWeighting

__all__ = ["RGW"]


class RGW(RandomWeighting):
    """Random gradient weights ``T * softmax(z)``, ``z ~ N(0, I)``, on the representation.

    Parameters
    ----------
    distribution
        Sampling distribution, as for RLW (default ``"normal"``, the paper's choice).
    """

    name = "rgw"
    level = "gradient"
    needs = frozenset({"losses"})
    wrt = "representation"

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(self.random_weights(observation["losses"]))
