"""The PAWS-X budget differs from LibMTL's example default; the difference is documented."""

from __future__ import annotations

from pathlib import Path

import mtlbench

DOC = Path(__file__).parents[2] / "docs" / "envs" / "xtreme.md"


def test_pawsx_budget_is_xtremes_and_the_difference_from_libmtl_is_justified() -> None:
    # Issue 14, item 20: 5 epochs against LibMTL's `--epochs` default of 100, undocumented.
    assert mtlbench.spec("pawsx-hps-v1").budget.epochs == 5
    text = DOC.read_text(encoding="utf-8")
    assert "Why 5 epochs for PAWS-X, not LibMTL's 100" in text
    assert "scripts/train_pawsx.sh" in text and "EPOCH=5" in text
    assert "budget.epochs=100" in text  # how to reproduce LibMTL's setting
