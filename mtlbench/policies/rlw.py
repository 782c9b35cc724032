"""Random loss weighting (RLW), Lin et al. (2022), Section 3 and Algorithm 1.

Every step draws ``z ~ p(z)`` and sets ``lambda = f(z)``, a point of the probability simplex;
the env minimises ``sum_t T * lambda_t * L_t``. The five distributions of Section 5.3:

================  ==========================  =========================================
``distribution``  draw                        normalisation ``f``
================  ==========================  =========================================
``"uniform"``     ``z_t ~ U(0, 1)`` i.i.d.    softmax
``"normal"``      ``z_t ~ N(0, 1)`` i.i.d.    softmax (the paper's default)
``"dirichlet"``   ``z ~ Dir(1, ..., 1)``      identity
``"bernoulli"``   ``z_t ~ Bern(0.5)`` i.i.d.  ``z / sum(z)``
``"c-bernoulli"`` one task drawn uniformly    ``z / sum(z)`` (= ``z``): exactly one 1
================  ==========================  =========================================

Appendix A shows ``E[lambda_t] = 1/T`` for all five, so the returned weights ``T * lambda``
have expectation 1 per task: the same scale as EW (see :mod:`mtlbench.policies.ew`).

The all-zero Bernoulli draw. ``z / sum(z)`` is undefined when every ``z_t = 0``; the first
LibMTL release (``LibMTL/weighting/RLW.py``, December 2021) re-drew until the sum was
non-zero, i.e. it sampled ``z`` conditioned on ``z != 0``. (Since January 2022, commit
523841a, LibMTL's RLW draws only the paper's default, ``softmax`` of ``N(0, 1)``; the other
four distributions exist only here.) We sample that conditional distribution directly, without a
host-synchronising retry loop: for ``T <= 62`` a uniform integer ``k`` in ``[1, 2^T - 1]``
is drawn and its ``T`` bits are ``z`` (each non-zero bit pattern equally likely, exactly as
the rejection loop gives). For ``T > 62`` the Bernoulli bits are drawn directly and a row
that is all zero (probability ``2^-T < 2^-62``) is replaced by a one-hot vector.
(That LibMTL release also skipped the normalisation for Bernoulli; we follow the paper,
Section 5.3.)

All randomness comes from ``self.generator``, never the global torch RNG.
"""

from __future__ import annotations

import torch

from mtlbench.policies.base import Observation, Policy, PolicyError

__all__ = ["DISTRIBUTIONS", "RLW", "RandomWeighting", "sample_simplex"]

DISTRIBUTIONS: tuple[str, ...] = ("uniform", "normal", "dirichlet", "bernoulli", "c-bernoulli")

# 2**62 - 1 is the largest bit pattern torch.randint can draw as int64 (high is exclusive).
_MAX_EXACT_BERNOULLI_TASKS = 62


def _nonzero_bernoulli(
    num_samples: int, num_tasks: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Bernoulli(0.5) vectors conditioned on not being all zero, shape ``(n, T)``."""
    if num_tasks <= _MAX_EXACT_BERNOULLI_TASKS:
        k = torch.randint(1, 2**num_tasks, (num_samples,), generator=generator, device=device)
        shifts = torch.arange(num_tasks, device=device)
        return ((k.unsqueeze(-1) >> shifts) & 1).to(torch.float32)
    bits = torch.rand(num_samples, num_tasks, generator=generator, device=device).lt(0.5)
    fallback = torch.nn.functional.one_hot(
        torch.randint(0, num_tasks, (num_samples,), generator=generator, device=device),
        num_tasks,
    ).bool()
    empty = ~bits.any(dim=-1, keepdim=True)
    return torch.where(empty, fallback, bits).to(torch.float32)


def sample_simplex(
    distribution: str,
    num_tasks: int,
    generator: torch.Generator,
    *,
    num_samples: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``lambda = f(z)`` on the probability simplex (Lin et al. 2022, Section 5.3).

    Returns shape ``(T,)``, or ``(num_samples, T)`` when ``num_samples`` is given; rows are
    non-negative and sum to 1. ``device`` defaults to the generator's device.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {', '.join(map(repr, DISTRIBUTIONS))}, got {distribution!r}"
        )
    n = 1 if num_samples is None else int(num_samples)
    dev = torch.device(device) if device is not None else generator.device
    if distribution == "uniform":
        lam = torch.softmax(torch.rand(n, num_tasks, generator=generator, device=dev), -1)
    elif distribution == "normal":
        lam = torch.softmax(torch.randn(n, num_tasks, generator=generator, device=dev), -1)
    elif distribution == "dirichlet":
        # Dir(1,...,1) is a normalised vector of i.i.d. Exp(1) draws.
        e = torch.empty(n, num_tasks, device=dev).exponential_(generator=generator)
        lam = e / e.sum(-1, keepdim=True)
    elif distribution == "bernoulli":
        z = _nonzero_bernoulli(n, num_tasks, generator, dev)
        lam = z / z.sum(-1, keepdim=True)
    else:  # c-bernoulli: exactly one task is drawn
        idx = torch.randint(0, num_tasks, (n,), generator=generator, device=dev)
        lam = torch.nn.functional.one_hot(idx, num_tasks).to(torch.float32)
    return lam[0] if num_samples is None else lam


class RandomWeighting(Policy):
    """What RLW and RGW share: the ``distribution`` and the draw ``T * lambda`` of every step.

    ``lambda`` comes from :func:`sample_simplex` with ``self.generator``; the weights take the
    losses' device and dtype. Subclasses say what the weights multiply (their ``act``).
    """

    def __init__(self, distribution: str = "normal") -> None:
        super().__init__()
        if distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"hyperparameter 'distribution' must be one of "
                f"{', '.join(map(repr, DISTRIBUTIONS))}, got {distribution!r}"
            )
        self.distribution = distribution

    def random_weights(self, losses: torch.Tensor) -> torch.Tensor:
        """``T * lambda``, ``lambda = f(z)`` drawn afresh, on ``losses``' device and dtype."""
        if self.generator is None:
            raise PolicyError(f"{self.name}: call reset() before act()")
        lam = sample_simplex(self.distribution, self.num_tasks, self.generator)
        return (self.num_tasks * lam).to(device=losses.device, dtype=losses.dtype)


class RLW(RandomWeighting):
    """Random loss weighting: ``w = T * f(z)``, ``z ~ p(z)`` drawn afresh every step.

    Parameters
    ----------
    distribution
        One of ``"uniform"``, ``"normal"`` (default, as in the paper), ``"dirichlet"``,
        ``"bernoulli"``, ``"c-bernoulli"`` (Lin et al. 2022, Section 5.3).
    """

    name = "rlw"
    level = "loss"
    needs = frozenset({"losses"})

    def act(self, observation: Observation) -> torch.Tensor:
        return self.random_weights(observation["losses"])
