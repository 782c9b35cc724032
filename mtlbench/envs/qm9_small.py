"""QM9-small environment (data: :mod:`mtlbench.data.qm9_small`, model: :mod:`mtlbench.models.mlp`):
the offline tier's regression regime, targets on very different scales.

Protocol: the 11 QM9 targets of ``qm9-hps-v1`` on a fixed subset (10,000 / 2,000 / 2,000
molecules), standardised with the training subset's statistics; MSE loss per task, MAE in
the original units as the metric; an MLP on fixed 49-d molecular descriptors as the shared
encoder and a linear head per target; Adam 1e-3, batch 128, constant learning rate; the
epoch budget chosen by the rule of ``benchmarks/budget_rule.py``; evaluation on val and test
after every epoch. ``stl_reference`` holds the test MAE of single-task runs of the same
protocol (one model per target; ``benchmarks/stl_reference.py``, docs/envs/qm9-small.md), so
results report Delta_m against it. Its numbers are not comparable with published QM9 tables.
"""

from __future__ import annotations

from mtlbench.data.qm9_small import NUM_FEATURES, REVISION, SPLIT_SHA256, SPLIT_SIZES, TARGET_STD, TASKS
from mtlbench.envs.tasks import regression_task
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    ModelSpec,
    OptimizerSpec,
    register,
)

EPOCHS = 100
#: test MAE (in mtlbench.data.qm9.UNITS) of single-task runs under this protocol, mean over seeds 0-2
#: (benchmarks/stl_reference.py; every run and the provenance: docs/envs/qm9-small-stl-reference.json)
STL_REFERENCE: dict[str, dict[str, float]] | None = {
    "mu": {"mae": 0.7533201707719289},
    "alpha": {"mae": 0.7690098125178785},
    "homo": {"mae": 0.2323267462785856},
    "lumo": {"mae": 0.2812796045810653},
    "r2": {"mae": 20.89146752373765},
    "zpve": {"mae": 0.012771205362098095},
    "U0": {"mae": 0.30482224151797616},
    "U": {"mae": 0.30460205775871124},
    "H": {"mae": 0.30147032594662604},
    "G": {"mae": 0.3013824072086401},
    "cv": {"mae": 0.30576106358348004},
}


def qm9_small_spec(
    epochs: int = EPOCHS, stl_reference: dict[str, dict[str, float]] | None = None
) -> BenchmarkSpec:
    """The qm9-small protocol (the registered env uses :data:`EPOCHS` and :data:`STL_REFERENCE`)."""
    return BenchmarkSpec(
        id="qm9-small-hps-v1",
        description=(
            "QM9-small (offline tier, regression): the 11 QM9 targets (qm9pack) on a fixed subset of "
            "the registered QM9 split, 10,000 / 2,000 / 2,000 molecules; fixed 49-d descriptors "
            "(Coulomb-matrix eigenvalues, element counts, distance histogram, gyration). MLP shared "
            "encoder (3 x 256, ReLU), linear head per target; MSE on standardised targets, MAE in "
            f"original units; Delta_m vs single-task runs. Adam 1e-3, batch 128, {epochs} epochs; "
            "evaluation every epoch."
        ),
        dataset=DatasetSpec(
            name="qm9_small",
            revision=REVISION,
            split_sizes=dict(SPLIT_SIZES),
            split_manifest_sha256=dict(SPLIT_SHA256),
        ),
        tasks=tuple(regression_task(t, TARGET_STD[t]) for t in TASKS),
        model=ModelSpec(
            architecture="hps",
            backbone="mlp",
            kwargs={"in_features": NUM_FEATURES, "hidden": 256, "depth": 3},
        ),
        optimizer=OptimizerSpec(name="adam", lr=1e-3, weight_decay=0.0, batch_size=128),
        budget=BudgetSpec(epochs=epochs, eval_every_epochs=1),
        stl_reference=stl_reference,
        gpu_fraction=0.25,
    )


register(qm9_small_spec(EPOCHS, STL_REFERENCE))
