"""XTREME environments: PAWS-X and UD-POS (data: :mod:`mtlbench.data.xtreme`, model:
:mod:`mtlbench.models.bert`).

Protocol (Lin et al., TMLR 2022, Section 5.2 and Appendix C; LibMTL ``examples/xtreme``;
XTREME's ``scripts/train_{pawsx,udpos}.sh``): four languages per problem, one task per
language on its own sentences (multi-input hard parameter sharing); sequences of 128 word
pieces (mBERT cased tokenizer); pretrained ``bert-base-multilingual-cased`` as the shared
encoder and ``Dropout(0.1) - Linear(768, C)`` per language; cross-entropy; Adam with
learning rate 2e-5 and no weight decay (LibMTL runs ``AdamW(lr=2e-5, eps=1e-8)``, whose
weight decay defaults to 0), batch 32 *per language*. The paper states no epoch count; we
take XTREME's fine-tuning budgets, 5 epochs for PAWS-X and 10 for UD-POS, at a constant
learning rate, an epoch being one pass over the largest language. LibMTL's example defaults
to 100 epochs (a generic argparse default); docs/envs/xtreme.md says why we keep 5. Evaluation on val (dev)
and test after every epoch.

* ``pawsx-hps-v1``: en, zh, de, es; sentence-pair classification from the pooled
  ``[CLS]`` vector; metric accuracy.
* ``udpos-hps-v1``: en, zh, te, vi; UPOS tagging from every word's first word piece
  (18 outputs: XTREME's label list, ``O`` and the 17 UPOS tags); metric XTREME's seqeval F1
  (``token_f1``).
"""

from __future__ import annotations

from mtlbench.data.xtreme import LABELS, LANGUAGES, MODEL_NAME, REVISIONS, SPLIT_SHA256
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    OptimizerSpec,
    TaskSpec,
    register,
)

MAX_LENGTH = 128


def _dataset(name: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        revision=REVISIONS[name],
        kwargs={"max_length": MAX_LENGTH, "tokenizer": MODEL_NAME},
        split_manifest_sha256=dict(SPLIT_SHA256[name]),
    )


def _optimizer() -> OptimizerSpec:
    return OptimizerSpec(name="adam", lr=2e-5, weight_decay=0.0, batch_size=32)


register(
    BenchmarkSpec(
        id="pawsx-hps-v1",
        description=(
            "PAWS-X (XTREME) paraphrase identification in en, zh, de, es, one task per language "
            "on its own sentence pairs (multi-input HPS). mBERT (cased) encoder, pooled [CLS], "
            "a linear head per language; 128 word pieces. Adam 2e-5, batch 32 per language, "
            "5 epochs; evaluation every epoch; metric: accuracy per language."
        ),
        dataset=_dataset("pawsx"),
        tasks=tuple(
            TaskSpec(
                name=lang,
                type="classification",
                loss="cross_entropy",
                metric="accuracy",
                metrics=(MetricSpec("acc", higher_is_better=True),),
            )
            for lang in LANGUAGES["pawsx"]
        ),
        model=ModelSpec(
            architecture="hps",
            backbone="mbert",
            kwargs={"multi_input": True, "level": "sentence", "num_labels": 2, "pretrained": True},
        ),
        optimizer=_optimizer(),
        budget=BudgetSpec(epochs=5, eval_every_epochs=1),
    )
)

register(
    BenchmarkSpec(
        id="udpos-hps-v1",
        description=(
            "UD v2.5 POS tagging (XTREME) in en, zh, te, vi, one task per language on its own "
            "sentences (multi-input HPS). mBERT (cased) encoder, a linear tagger per language on "
            "the first word piece of each word; 128 word pieces. Adam 2e-5, batch 32 per "
            "language, 10 epochs; evaluation every epoch; metric: XTREME's seqeval F1."
        ),
        dataset=_dataset("udpos"),
        tasks=tuple(
            TaskSpec(
                name=lang,
                type="tagging",
                loss="token_cross_entropy",
                metric="token_f1",
                metrics=(MetricSpec("f1", higher_is_better=True),),
                metric_kwargs={"ignore_index": -100, "labels": list(LABELS)},
                loss_kwargs={"ignore_index": -100},
            )
            for lang in LANGUAGES["udpos"]
        ),
        model=ModelSpec(
            architecture="hps",
            backbone="mbert",
            kwargs={"multi_input": True, "level": "token", "num_labels": len(LABELS), "pretrained": True},
        ),
        optimizer=_optimizer(),
        budget=BudgetSpec(epochs=10, eval_every_epochs=1),
    )
)
