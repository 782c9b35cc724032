from __future__ import annotations

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.ew import EW
from mtlbench.policies.rlw import DISTRIBUTIONS, RLW, sample_simplex

TASKS = ["a", "b", "c"]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("num_tasks", [2, 3, 5])
def test_samples_lie_on_the_simplex_with_mean_one_over_t(distribution: str, num_tasks: int) -> None:
    lam = sample_simplex(distribution, num_tasks, _gen(1), num_samples=50_000)
    assert lam.shape == (50_000, num_tasks)
    assert torch.isfinite(lam).all()
    assert (lam >= 0).all()
    torch.testing.assert_close(lam.sum(-1), torch.ones(50_000), atol=1e-5, rtol=0)
    # Appendix A of Lin et al. (2022): E[lambda_t] = 1/T for all five distributions.
    assert (lam.mean(0) - 1.0 / num_tasks).abs().max() < 0.01


def test_c_bernoulli_has_exactly_one_nonzero() -> None:
    lam = sample_simplex("c-bernoulli", 4, _gen(), num_samples=1000)
    assert ((lam > 0).sum(-1) == 1).all()
    assert torch.equal(lam.max(-1).values, torch.ones(1000))


def test_bernoulli_never_all_zero_and_uniform_over_nonzero_patterns() -> None:
    lam = sample_simplex("bernoulli", 3, _gen(), num_samples=70_000)
    z = (lam > 0).long()
    assert (z.sum(-1) > 0).all()
    # every non-zero bit pattern equally likely (LibMTL's redraw-until-non-zero)
    codes = (z * torch.tensor([1, 2, 4])).sum(-1)
    freq = torch.bincount(codes, minlength=8).float() / len(codes)
    assert freq[0] == 0
    assert (freq[1:] - 1 / 7).abs().max() < 0.01
    # normalised by the number of ones
    torch.testing.assert_close(
        lam[z.bool()], (1.0 / z.sum(-1, keepdim=True).float()).expand_as(lam)[z.bool()]
    )


def test_bernoulli_many_tasks_path() -> None:
    lam = sample_simplex("bernoulli", 70, _gen(), num_samples=200)
    assert (lam >= 0).all()
    torch.testing.assert_close(lam.sum(-1), torch.ones(200))


def test_unknown_distribution_is_rejected_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match="distribution"):
        RLW(distribution="gamma")
    with pytest.raises(ValueError, match="distribution"):
        sample_simplex("gamma", 3, _gen())


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_act_scaled_by_t_deterministic_and_leaves_global_rng_alone(distribution: str) -> None:
    rng_before = torch.random.get_rng_state()
    p, q = RLW(distribution), RLW(distribution)
    p.reset(TASKS, seed=7)
    q.reset(TASKS, seed=7)
    obs = {"losses": torch.tensor([1.0, 2.0, 3.0])}
    ws = [p.act(obs) for _ in range(20)]
    for w in ws:
        assert w.shape == (3,) and torch.isfinite(w).all() and (w >= 0).all()
        torch.testing.assert_close(w.sum(), torch.tensor(3.0))
    assert all(torch.equal(w, q.act(obs)) for w in ws)
    assert any(not torch.equal(ws[0], w) for w in ws[1:])
    # reset re-seeds: the same stream again
    p.reset(TASKS, seed=7)
    assert torch.equal(p.act(obs), ws[0])
    assert torch.equal(torch.random.get_rng_state(), rng_before)


def test_different_seeds_differ() -> None:
    p, q = RLW(), RLW()
    p.reset(TASKS, seed=0)
    q.reset(TASKS, seed=1)
    obs = {"losses": torch.ones(3)}
    assert not torch.equal(p.act(obs), q.act(obs))


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_rlw_has_the_expected_scale_of_ew(distribution: str) -> None:
    ew = EW()
    ew.reset(TASKS, seed=0)
    ew_w = ew.act({"losses": torch.ones(3)})
    rlw_mean = 3 * sample_simplex(distribution, 3, _gen(3), num_samples=50_000).mean(0)
    assert (rlw_mean - ew_w).abs().max() < 0.03
    # and the policy itself
    p = policies.make("rlw", distribution=distribution)
    p.reset(TASKS, seed=0)
    mean = torch.stack([p.act({"losses": torch.ones(3)}) for _ in range(2000)]).mean(0)
    assert (mean - ew_w).abs().max() < 0.12


def test_hparams_round_trip() -> None:
    p = RLW("dirichlet")
    assert p.hparams() == {"distribution": "dirichlet"}
    assert repr(p) == "RLW(distribution='dirichlet')"
