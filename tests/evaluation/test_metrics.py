"""Metric accumulators against values computed by hand on tiny tensors."""

from __future__ import annotations

import itertools
import math
import random
import warnings

import pytest
import torch
import torch.nn.functional as F

from mtlbench.evaluation.metrics import (
    MAE,
    METRICS,
    UDPOS_LABELS,
    Accuracy,
    Depth,
    Segmentation,
    SurfaceNormal,
    TaskMetric,
    TokenF1,
    build_metric,
)


def feed(metric: TaskMetric, pred: torch.Tensor, target: torch.Tensor, cuts: list[int]) -> dict[str, float]:
    """Reset, update with the batches ``pred[a:b]`` cut at ``cuts``, compute."""
    metric.reset()
    bounds = [0, *cuts, pred.shape[0]]
    for a, b in itertools.pairwise(bounds):
        metric.update(pred[a:b], target[a:b])
    return metric.compute()


def logits_of(classes: torch.Tensor, num_classes: int, dim: int) -> torch.Tensor:
    """Logits whose argmax along ``dim`` is ``classes``."""
    return F.one_hot(classes, num_classes).float().movedim(-1, dim)


# ------------------------------------------------------------------------------ accuracy
def test_accuracy_multiclass_by_hand() -> None:
    pred = logits_of(torch.tensor([0, 2, 1, 1]), 3, dim=1)
    target = torch.tensor([0, 1, 1, 2])
    # correct: 0==0, 2!=1, 1==1, 1!=2 -> 2 / 4 = 50 %
    assert feed(Accuracy(), pred, target, []) == {"acc": 50.0}
    assert feed(Accuracy(), pred, target, [1]) == {"acc": 50.0}
    assert feed(Accuracy(), pred, target, [3]) == {"acc": 50.0}


def test_accuracy_uneven_batches_are_not_averaged() -> None:
    pred = logits_of(torch.tensor([0, 1, 1, 1]), 2, dim=1)
    target = torch.tensor([1, 1, 1, 1])
    # one batch: 3 / 4 = 75 %; a mean of batch means over cut [1] would give (0 + 100) / 2 = 50 %
    assert feed(Accuracy(), pred, target, [1]) == {"acc": 75.0}


def test_accuracy_binary_threshold_at_zero() -> None:
    logits = torch.tensor([2.0, -1.0, 0.0, 0.5])
    target = torch.tensor([1, 0, 1, 0])
    # predicted 1 where logit > 0: [1, 0, 0, 1]; correct: yes, yes, no, no -> 50 %
    assert feed(Accuracy(binary=True), logits, target, [1]) == {"acc": 50.0}
    assert feed(Accuracy(binary=True), logits[:, None], target[:, None], [2]) == {"acc": 50.0}


def test_accuracy_rejects_out_of_range_labels_and_early_compute() -> None:
    metric = Accuracy()
    with pytest.raises(RuntimeError, match="before any update"):
        metric.compute()
    metric.update(logits_of(torch.tensor([0, 1]), 2, dim=1), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="1 target labels outside"):
        metric.compute()
    with pytest.raises(ValueError, match=r"\(B, C\) logits"):
        metric.update(torch.zeros(2, 2, 2), torch.zeros(2, dtype=torch.long))


# ------------------------------------------------------------------------------ segmentation
def test_segmentation_by_hand_with_ignore_and_absent_class() -> None:
    target = torch.tensor([[[0, 0, 1], [1, -1, 0]]])
    guess = torch.tensor([[[0, 1, 1], [0, 2, 0]]])  # the only "2" sits on the ignored pixel
    pred = logits_of(guess, 3, dim=1)
    # labelled (target, pred) pairs: (0,0) (0,1) (1,1) (1,0) (0,0)
    # class 0: TP 2, FP 1, FN 1 -> IoU 2/4 = 1/2
    # class 1: TP 1, FP 1, FN 1 -> IoU 1/3
    # class 2: never a target, predicted only on the ignored pixel -> union 0, left out
    # mIoU = (1/2 + 1/3) / 2 = 5/12; pixel accuracy = 3 correct / 5 labelled
    out = feed(Segmentation(num_classes=3), pred, target, [])
    assert out["miou"] == pytest.approx(100 * 5 / 12)
    assert out["pix_acc"] == pytest.approx(60.0)


def test_segmentation_confusion_matrix_spans_uneven_batches() -> None:
    target = torch.tensor(
        [
            [[0, 0], [0, 0]],
            [[1, 1], [-1, -1]],
            [[1, 0], [2, 2]],
        ]
    )
    guess = torch.tensor(
        [
            [[0, 0], [0, 1]],
            [[1, 0], [2, 2]],
            [[1, 0], [2, 1]],
        ]
    )
    pred = logits_of(guess, 3, dim=1)
    # labelled pairs over the split: image 0: (0,0)x3 (0,1); image 1: (1,1) (1,0);
    # image 2: (1,1) (0,0) (2,2) (2,1)
    # class 0: TP 4, FP 1 (1->0), FN 1 (0->1) -> 4/6
    # class 1: TP 2, FP 2 (0->1, 2->1), FN 1 (1->0) -> 2/5
    # class 2: TP 1, FP 0, FN 1 (2->1) -> 1/2
    # mIoU = (4/6 + 2/5 + 1/2) / 3 = 47/90; pixel accuracy = 7 / 10
    expected = {"miou": pytest.approx(100 * 47 / 90), "pix_acc": pytest.approx(70.0)}
    metric = Segmentation(num_classes=3)
    assert feed(metric, pred, target, []) == expected
    assert feed(metric, pred, target, [1]) == expected
    assert feed(metric, pred, target, [2]) == expected


def test_segmentation_rejects_labels_outside_classes() -> None:
    metric = Segmentation(num_classes=2)
    metric.update(torch.zeros(1, 2, 1, 2), torch.tensor([[[0, 255]]]))
    with pytest.raises(ValueError, match="outside"):
        metric.compute()
    with pytest.raises(ValueError, match="num_classes"):
        Segmentation(num_classes=1)


# ------------------------------------------------------------------------------ depth
DEPTH_PRED = torch.tensor([[[[1.0, 7.0], [3.0, 6.0]]], [[[0.0, 0.0], [0.0, 1.0]]]])
DEPTH_TARGET = torch.tensor([[[[2.0, 0.0], [4.0, 4.0]]], [[[0.0, 0.0], [0.0, 3.0]]]])


def test_depth_by_hand_excludes_missing_depth() -> None:
    # image 0, valid where target > 0: |1-2| = 1, |3-4| = 1, |6-4| = 2 (the 7 sits on a 0 target)
    # abs_err = 4/3; rel_err = (1/2 + 1/4 + 2/4) / 3 = 5/12
    out = feed(Depth(), DEPTH_PRED[:1], DEPTH_TARGET[:1], [])
    assert out["abs_err"] == pytest.approx(4 / 3)
    assert out["rel_err"] == pytest.approx(5 / 12)


def test_depth_is_pixel_weighted_over_uneven_batches() -> None:
    # image 1 adds one valid pixel: |1-3| = 2, rel 2/3
    # abs_err = (4 + 2) / 4 = 3/2 (a mean of per-batch means would give (4/3 + 2) / 2 = 5/3)
    # rel_err = (5/4 + 2/3) / 4 = 23/48
    for cuts in ([], [1]):
        out = feed(Depth(), DEPTH_PRED, DEPTH_TARGET, cuts)
        assert out["abs_err"] == pytest.approx(3 / 2)
        assert out["rel_err"] == pytest.approx(23 / 48)


# ------------------------------------------------------------------------------ normals
def _normals(angles_deg: list[float], scale: float = 3.0) -> torch.Tensor:
    """(1, 3, 1, W) predictions at the given angles from the x axis, not unit length."""
    rad = torch.tensor(angles_deg, dtype=torch.float64) * math.pi / 180
    vec = torch.stack([rad.cos(), rad.sin(), torch.zeros_like(rad)]) * scale
    return vec.float()[None, :, None, :]


def test_surface_normal_by_hand() -> None:
    angles = [0.0, 10.0, 20.0, 45.0, 90.0, 180.0, 90.0]
    pred = _normals(angles)
    target = torch.zeros(1, 3, 1, len(angles))
    target[0, 0, 0, :6] = 1.0  # x axis; the last pixel has no ground truth (all zero)
    # valid angles: 0 10 20 45 90 180
    # mean = 345 / 6 = 57.5; median (even count) = (20 + 45) / 2 = 32.5
    # below 11.25: 0, 10 -> 2/6; below 22.5: 0, 10, 20 -> 3/6; below 30: 3/6
    out = feed(SurfaceNormal(), pred, target, [])
    assert out == {
        "mean_angle": pytest.approx(57.5, abs=1e-3),
        "median_angle": pytest.approx(32.5, abs=1e-3),
        "within_11.25": pytest.approx(100 * 2 / 6),
        "within_22.5": pytest.approx(50.0),
        "within_30": pytest.approx(50.0),
    }
    assert list(out) == list(SurfaceNormal.names)


def test_surface_normal_median_over_uneven_batches() -> None:
    # images of 1 pixel: 10, 45, 20, 90, 0 degrees -> median of 5 = 20 (not a mean of batch medians)
    angles = [10.0, 45.0, 20.0, 90.0, 0.0]
    pred = _normals(angles).permute(3, 1, 2, 0)  # (5, 3, 1, 1)
    target = torch.zeros_like(pred)
    target[:, 0] = 1.0
    for cuts in ([], [1], [2, 3]):
        out = feed(SurfaceNormal(), pred, target, cuts)
        assert out["median_angle"] == pytest.approx(20.0, abs=1e-3)
        assert out["mean_angle"] == pytest.approx(33.0, abs=1e-3)  # 165 / 5
        assert out["within_11.25"] == pytest.approx(40.0)  # 0, 10


def test_surface_normal_keeps_unit_target_whose_components_sum_to_zero() -> None:
    s = 1 / math.sqrt(2)
    target = torch.tensor([s, -s, 0.0]).reshape(1, 3, 1, 1)
    out = feed(SurfaceNormal(), target * 5, target, [])
    # float32 acos just below cos = 1 resolves angles to a few hundredths of a degree
    assert out["mean_angle"] == pytest.approx(0.0, abs=0.05)
    assert out["within_11.25"] == 100.0


# ------------------------------------------------------------------------------ MAE
def test_mae_by_hand_with_scale() -> None:
    pred = torch.tensor([1.0, 2.0, 4.0])
    target = torch.tensor([1.5, 2.0, 1.0])
    # |diff| = 0.5, 0, 3 -> mean 3.5 / 3, in original units x 2 = 7/3
    assert feed(MAE(scale=2.0), pred, target, [2])["mae"] == pytest.approx(7 / 3)
    assert feed(MAE(scale=2.0), pred[:, None], target[:, None], [1])["mae"] == pytest.approx(7 / 3)
    assert feed(MAE(), pred, target, [])["mae"] == pytest.approx(7 / 6)
    with pytest.raises(ValueError, match="scale"):
        MAE(scale=0.0)


# ------------------------------------------------------------------------------ token F1
TAG = {label: i for i, label in enumerate(UDPOS_LABELS)}
IGN = -100


def tags(*names: str) -> list[int]:
    return [IGN if n == "-" else TAG[n] for n in names]


def token_f1(gold: list[list[int]], guess: list[list[int]], cuts: list[int]) -> float:
    target = torch.tensor(gold)
    pred = logits_of(torch.tensor(guess).clamp_min(0), len(UDPOS_LABELS), dim=2)
    return feed(TokenF1(), pred, target, cuts)["f1"]


def test_token_f1_counts_seqeval_chunks_not_tokens() -> None:
    # seqeval reads NOUN as tag "N", type "OUN": a run NOUN NOUN is one chunk.
    # gold NOUN NOUN VERB -> chunks (OUN, 0-1), (ERB, 2-2)
    # pred NOUN VERB VERB -> chunks (OUN, 0-0), (ERB, 1-2)
    # no chunk in common: F1 = 0, although 2 of 3 tokens are right
    assert token_f1([tags("NOUN", "NOUN", "VERB")], [tags("NOUN", "VERB", "VERB")], []) == 0.0
    assert token_f1([tags("NOUN", "NOUN", "VERB")], [tags("NOUN", "NOUN", "VERB")], []) == 100.0


def test_token_f1_two_sentences_with_ignored_positions_and_batches() -> None:
    gold = [tags("-", "NOUN", "-", "VERB", "-"), tags("-", "DET", "NOUN", "-", "-")]
    guess = [tags("X", "NOUN", "ADJ", "VERB", "O"), tags("O", "DET", "ADJ", "PUNCT", "X")]
    # scored tokens only: sentence 1 gold NOUN VERB / pred NOUN VERB; sentence 2 gold DET NOUN
    # / pred DET ADJ. Gold chunks: OUN, ERB | ET, OUN; predicted: OUN, ERB | ET, DJ.
    # TP = 3 -> F1 = 2 * 3 / (4 + 4) = 75 %
    assert token_f1(gold, guess, []) == pytest.approx(75.0)
    assert token_f1(gold, guess, [1]) == pytest.approx(75.0)


def test_token_f1_sconj_and_cconj_share_a_chunk_type() -> None:
    # SCONJ -> tag "S", type "CONJ"; CCONJ -> tag "C", type "CONJ": both give (CONJ, 0-0)
    assert token_f1([tags("SCONJ")], [tags("CCONJ")], []) == 100.0


def test_token_f1_checks_shapes_and_labels() -> None:
    with pytest.raises(ValueError, match=r"\(B, L, 18\)"):
        TokenF1().update(torch.zeros(1, 2, 17), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="unique"):
        TokenF1(labels=["NOUN", "NOUN"])


def _random_tagging(
    labels: tuple[str, ...], seed: int, b: int = 7, length: int = 8, ignore: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    k = 2 + seed % (len(labels) - 1)  # few distinct tags make runs and type clashes frequent
    alphabet = torch.randperm(len(labels), generator=g)[:k]
    gold = alphabet[torch.randint(0, k, (b, length), generator=g)]
    guess = alphabet[torch.randint(0, k, (b, length), generator=g)]
    guess = torch.where(torch.rand(b, length, generator=g) < 0.6, gold, guess)
    gold = torch.where(torch.rand(b, length, generator=g) < ignore, IGN, gold)
    return gold, guess


QUIRKY_LABELS = (
    "O",
    "B-PER",
    "I-PER",
    "E-PER",
    "S-PER",
    "B-LOC",
    "I-LOC",
    "X",
    "SCONJ",
    "CCONJ",
    ".A",
    "NOUN",
)


@pytest.mark.parametrize("labels", [UDPOS_LABELS, QUIRKY_LABELS], ids=["udpos", "quirky"])
def test_token_f1_matches_seqeval(labels: tuple[str, ...]) -> None:
    seqeval = pytest.importorskip("seqeval.metrics")
    for seed in range(80):
        gold, guess = _random_tagging(labels, seed, ignore=0.3 if seed % 3 else 0.8)
        y_true = [[labels[t] for t in row if t != IGN] for row in gold.tolist()]
        y_pred = [
            [labels[p] for p, t in zip(prow, row) if t != IGN]
            for prow, row in zip(guess.tolist(), gold.tolist())
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns about every non-IOB tag
            expected = 100 * seqeval.f1_score(y_true, y_pred)
        cuts = sorted(random.Random(seed).sample(range(1, gold.shape[0]), 2))
        pred = logits_of(guess, len(labels), dim=2)
        assert feed(TokenF1(labels=labels), pred, gold, cuts)["f1"] == pytest.approx(expected, abs=1e-9)


# ------------------------------------------------------------------------------ registry
def test_build_metric_registry() -> None:
    assert set(METRICS) == {"accuracy", "segmentation", "depth", "normal", "mae", "token_f1"}
    assert isinstance(build_metric("segmentation", num_classes=13), Segmentation)
    assert build_metric("mae", scale=0.5).scale == 0.5
    with pytest.raises(ValueError, match="known kinds: accuracy, depth, mae"):
        build_metric("miou")
    with pytest.raises(TypeError, match="'depth'"):
        build_metric("depth", num_classes=3)


@pytest.mark.parametrize("kind", sorted(METRICS))
def test_every_metric_declares_direction_for_each_name(kind: str) -> None:
    metric = build_metric(kind, **({"num_classes": 3} if kind == "segmentation" else {}))
    assert set(metric.higher_is_better) == set(metric.names)


# ------------------------------------------------------------------------------ device
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_updates_never_sync_and_match_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    cases: list[tuple[TaskMetric, TaskMetric, torch.Tensor, torch.Tensor]] = [
        (Accuracy(), Accuracy(), torch.randn(9, 4, generator=g), torch.randint(0, 4, (9,), generator=g)),
        (
            Segmentation(5),
            Segmentation(5),
            torch.randn(9, 5, 6, 7, generator=g),
            torch.randint(-1, 5, (9, 6, 7), generator=g),
        ),
        (Depth(), Depth(), torch.rand(9, 1, 6, 7, generator=g), torch.rand(9, 1, 6, 7, generator=g).round()),
        (
            SurfaceNormal(),
            SurfaceNormal(),
            torch.randn(9, 3, 6, 7, generator=g),
            torch.randn(9, 3, 6, 7, generator=g),
        ),
        (MAE(2.0), MAE(2.0), torch.randn(9, generator=g), torch.randn(9, generator=g)),
        (
            TokenF1(),
            TokenF1(),
            torch.randn(9, 6, 18, generator=g),
            torch.randint(0, 18, (9, 6), generator=g).masked_fill(torch.rand(9, 6, generator=g) < 0.3, IGN),
        ),
    ]
    for cpu_metric, gpu_metric, pred, target in cases:
        expected = feed(cpu_metric, pred, target, [4])
        pred_d, target_d = pred.cuda(), target.cuda()
        gpu_metric.update(pred_d[:1], target_d[:1])  # first update: state and tables reach the device
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            gpu_metric.update(pred_d[1:4], target_d[1:4])
            gpu_metric.update(pred_d[4:], target_d[4:])
        finally:
            torch.cuda.set_sync_debug_mode("default")
        got = gpu_metric.compute()
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-4), type(cpu_metric).__name__
