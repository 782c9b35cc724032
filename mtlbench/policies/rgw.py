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

from typing import Any

from mtlbench.policies.base import GradientWeights, Observation, Policy, PolicyError
from mtlbench.policies.rlw import DISTRIBUTIONS, sample_simplex

__all__ = ["RGW"]


class RGW(Policy):
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

    def __init__(self, distribution: str = "normal") -> None:
        super().__init__()
        if distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"hyperparameter 'distribution' must be one of "
                f"{', '.join(map(repr, DISTRIBUTIONS))}, got {distribution!r}"
            )
        self.distribution = distribution

    def hparams(self) -> dict[str, Any]:
        return {"distribution": self.distribution}

    def act(self, observation: Observation) -> GradientWeights:
        if self.generator is None:
            raise PolicyError("rgw: call reset() before act()")
        losses = observation["losses"]
        lam = sample_simplex(self.distribution, self.num_tasks, self.generator)
        return GradientWeights((self.num_tasks * lam).to(device=losses.device, dtype=losses.dtype))
