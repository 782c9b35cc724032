from __future__ import annotations

import math

import pytest
import torch

from mtlbench.policies.dwa import DWA, dwa_weights

TASKS = ["a", "b", "c"]


def _obs(losses: list[float], epoch: int) -> dict[str, torch.Tensor]:
    return {"losses": torch.tensor(losses), "epoch": torch.tensor(epoch)}


def _run_two_epochs(p: DWA) -> None:
    # epoch 0 averages [1, 2, 4]; epoch 1 averages [0.5, 2, 2]
    for losses in ([0.5, 1.0, 3.0], [1.5, 3.0, 5.0]):
        assert torch.equal(p.act(_obs(losses, 0)), torch.ones(3))
    for losses in ([0.25, 2.0, 1.0], [0.75, 2.0, 3.0]):
        assert torch.equal(p.act(_obs(losses, 1)), torch.ones(3))


def test_golden_weights_after_two_epochs() -> None:
    p = DWA()
    p.reset(TASKS, seed=0)
    _run_two_epochs(p)
    w = p.act(_obs([9.0, 9.0, 9.0], 2))
    # ratios r = [0.5, 1, 0.5], temperature 2: w_t = 3 exp(r_t/2) / sum_s exp(r_s/2)
    e = [math.exp(0.25), math.exp(0.5), math.exp(0.25)]
    expected = torch.tensor([3 * x / sum(e) for x in e])
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(w.sum(), torch.tensor(3.0))
    # the weights within epoch 2 stay fixed (they depend on epochs 0 and 1 only)
    torch.testing.assert_close(p.act(_obs([0.1, 0.2, 0.3], 2)), expected)


def test_epoch_three_uses_epochs_one_and_two() -> None:
    p = DWA(temperature=1.0)
    p.reset(TASKS, seed=0)
    _run_two_epochs(p)
    p.act(_obs([1.0, 1.0, 1.0], 2))
    p.act(_obs([0.0, 3.0, 1.0], 2))  # epoch 2 averages [0.5, 2, 1]
    w = p.act(_obs([1.0, 1.0, 1.0], 3))
    torch.testing.assert_close(
        w, dwa_weights(torch.tensor([0.5, 2.0, 1.0]), torch.tensor([0.5, 2.0, 2.0]), 1.0)
    )


def test_reset_really_resets() -> None:
    p = DWA()
    p.reset(TASKS, seed=0)
    _run_two_epochs(p)
    assert not torch.equal(p.act(_obs([1.0, 1.0, 1.0], 2)), torch.ones(3))
    p.reset(TASKS, seed=0)
    assert torch.equal(p.act(_obs([1.0, 1.0, 1.0], 2)), torch.ones(3))


def test_state_dict_round_trip() -> None:
    p, q = DWA(), DWA()
    p.reset(TASKS, seed=0)
    q.reset(TASKS, seed=0)
    _run_two_epochs(p)
    q.load_state_dict(p.state_dict())
    torch.testing.assert_close(p.act(_obs([1.0, 1.0, 1.0], 2)), q.act(_obs([1.0, 1.0, 1.0], 2)))


def test_bad_temperature_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="temperature"):
        DWA(temperature=0.0)
