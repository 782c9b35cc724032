"""Multilingual BERT encoder with one linear head per language (XTREME PAWS-X and UD-POS).

Lin et al. (TMLR 2022, Section 5.2): "a pre-trained multilingual BERT (mBERT) model [...] is
used as the shared encoder among languages and a fully connected layer is used as the
language-specific output layer". As in LibMTL's XTREME example each head is
``Dropout(0.1) - Linear(768, C)``. Two levels:

* ``level="sentence"`` (PAWS-X): the head reads BERT's pooled ``[CLS]`` output, shape
  ``(B, 768)``, and returns ``(B, C)`` logits.
* ``level="token"`` (UD-POS): the head reads the last hidden states ``(B, L, 768)`` and
  returns ``(B, L, C)`` logits (loss ``token_cross_entropy`` ignores label -100).

The encoder takes the tokenizer's output as a mapping ``{"input_ids", "attention_mask",
"token_type_ids"}`` of ``(B, L)`` integer tensors, which is what
:mod:`mtlbench.data.xtreme` yields per language.

Weights: ``pretrained=True`` loads ``bert-base-multilingual-cased`` from the local Hugging
Face cache only (``local_files_only=True``); nothing is downloaded at run time.
``pretrained=False`` builds a randomly initialised model from a :class:`BertConfig` equal to
mBERT's; ``tiny=True`` shrinks it (2 layers, width 32) for tests, and ``config_overrides``
changes any config field (e.g. ``vocab_size`` to match a test vocabulary).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # transformers is optional (mtlbench[nlp]) and imported lazily
    from transformers import PreTrainedModel

__all__ = ["MBERT_CONFIG", "TINY_CONFIG", "BertEncoder", "mbert"]

MODEL_NAME = "bert-base-multilingual-cased"
#: the architecture of bert-base-multilingual-cased (Devlin et al. 2019)
MBERT_CONFIG: dict[str, Any] = {
    "vocab_size": 119_547,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}
#: a tiny BERT for tests: same code path, a few thousand parameters per layer
TINY_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "max_position_embeddings": 512,
}
LEVELS = ("sentence", "token")
INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError(
            "the mBERT backbone needs Hugging Face transformers: pip install 'mtlbench[nlp]' "
            "(or pip install transformers)"
        ) from err
    return transformers


class BertEncoder(nn.Module):
    """BERT returning the pooled ``[CLS]`` vector (sentence level) or all hidden states (token level)."""

    def __init__(self, bert: PreTrainedModel, level: str) -> None:
        super().__init__()
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.bert = bert
        self.level = level
        self.out_dim = int(bert.config.hidden_size)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if not isinstance(inputs, Mapping) or "input_ids" not in inputs:
            raise TypeError(
                "the mBERT encoder expects a mapping with 'input_ids' (and optionally "
                "'attention_mask', 'token_type_ids')"
            )
        ids = inputs["input_ids"]
        if ids.shape[0] == 0:
            # A multi-input evaluation pass gives a language that has run out an empty
            # sub-batch; BERT's attention cannot reshape zero rows, and there is nothing to do.
            p = next(self.bert.parameters())
            shape = (0, self.out_dim) if self.level == "sentence" else (0, ids.shape[1], self.out_dim)
            return p.new_zeros(shape)
        out = self.bert(**{k: inputs[k].long() for k in INPUT_KEYS if k in inputs})
        return out.pooler_output if self.level == "sentence" else out.last_hidden_state


def _build_bert(
    pretrained: bool,
    model_name: str,
    tiny: bool,
    config_overrides: Mapping[str, Any] | None,
) -> PreTrainedModel:
    tf = _transformers()
    overrides = dict(config_overrides or {})
    if pretrained:
        if tiny:
            raise ValueError("tiny=True builds a random model; it cannot be pretrained")
        try:
            return tf.BertModel.from_pretrained(
                model_name, local_files_only=True, add_pooling_layer=True, **overrides
            )
        except OSError as err:
            raise FileNotFoundError(
                f"the pretrained weights of {model_name!r} are not in the local Hugging Face "
                "cache; mtlbench never downloads at run time. Fetch them once on a machine with "
                f"network access (`huggingface-cli download {model_name}`, or "
                f"`python -c \"import transformers as t; t.BertModel.from_pretrained('{model_name}'); "
                f"t.BertTokenizerFast.from_pretrained('{model_name}')\"`) and point HF_HOME at "
                "that cache, or pass overrides={'model.kwargs.pretrained': False}."
            ) from err
    fields = {**MBERT_CONFIG, **(TINY_CONFIG if tiny else {}), **overrides}
    return tf.BertModel(tf.BertConfig(**fields), add_pooling_layer=True)


def mbert(
    tasks: Sequence[Any],
    *,
    num_labels: int,
    level: str = "sentence",
    pretrained: bool = True,
    model_name: str = MODEL_NAME,
    dropout: float = 0.1,
    tiny: bool = False,
    config_overrides: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Backbone factory: the shared mBERT encoder and a ``Dropout - Linear(768, num_labels)`` head per task."""
    if num_labels < 1:
        raise ValueError(f"num_labels must be >= 1, got {num_labels}")
    encoder = BertEncoder(_build_bert(pretrained, model_name, tiny, config_overrides), level)
    heads: dict[str, nn.Module] = {
        t.name: nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder.out_dim, num_labels)) for t in tasks
    }
    return encoder, heads
