"""The ``mtlbench envs`` and ``mtlbench methods`` listings, as aligned plain-text tables.

``envs``: per registered env its tasks (count and names), budget and whether its data is
under the data root (a presence check of ``<root>/<dataset>/``; ``mtlbench data verify``
reads every file). ``methods``: per built-in method its level, the random-weighting
reference it is tested against (RLW at the loss level, RGW at the gradient level; Lin et
al. 2022, Sec. 4), its paper and a one-line description, from
``submissions/<name>/submission.yaml`` when the repository's submissions are there, else
from the policy's docstring.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EnvRow",
    "MethodRow",
    "data_state",
    "env_rows",
    "format_envs",
    "format_methods",
    "method_rows",
    "reference_for",
]

#: the random-weighting reference of each level (Lin et al. 2022, the litmus test)
REFERENCES = {"loss": "rlw", "gradient": "rgw"}
SUBMISSIONS = Path(__file__).resolve().parents[1] / "submissions"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers) - 1)]

    def line(cells: Sequence[str]) -> str:
        padded = [str(c).ljust(w) for c, w in zip(cells, widths, strict=False)]
        return "  ".join([*padded, str(cells[-1])]).rstrip()

    rule = ["-" * len(h) for h in headers]
    return "\n".join([line(headers), line(rule), *(line(r) for r in rows)])


# ------------------------------------------------------------------------------- envs
@dataclass(frozen=True)
class EnvRow:
    env_id: str
    tasks: tuple[str, ...]
    budget: str
    data: str


def _names(tasks: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(tasks[:limit]) + (f", ... {tasks[-1]}" if len(tasks) > limit else "")
    return f"{len(tasks)}: {shown}"


def data_state(dataset: str, root: Path) -> str:
    """``bundled``, ``present`` or ``missing: <the command that installs it>`` (no file is read)."""
    from mtlbench.data import dataset_module
    from mtlbench.data.base import SOURCES, prepare_command

    try:
        dataset_module(dataset)  # registers its Source
    except ModuleNotFoundError as err:
        return f"unavailable ({err})"
    source = SOURCES.get(dataset)
    if source is not None and source.bundled:
        return "bundled"
    return "present" if (root / dataset).is_dir() else f"missing: {prepare_command(dataset)}"


def env_rows(root: str | Path | None = None) -> list[EnvRow]:
    """One row per registered env (newest versions and superseded ones alike), sorted by id."""
    from mtlbench.data import data_root
    from mtlbench.registration import registry

    base = data_root(root)
    states: dict[str, str] = {}
    rows = []
    for spec in sorted(registry.values(), key=lambda s: s.id):
        name = spec.dataset.name
        if name not in states:
            states[name] = data_state(name, base)
        b = spec.budget
        budget = f"{b.epochs} epochs"
        if b.steps_per_epoch is not None:
            budget += f" x {b.steps_per_epoch} steps"
        if b.eval_every_epochs != 1:
            budget += f", eval every {b.eval_every_epochs}"
        rows.append(EnvRow(spec.id, spec.task_names, budget, states[name]))
    return rows


def format_envs(root: str | Path | None = None) -> str:
    from mtlbench.data import data_root

    rows = env_rows(root)
    table = _table(
        ["env", "tasks", "budget", "data"], [[r.env_id, _names(r.tasks), r.budget, r.data] for r in rows]
    )
    return f"{table}\n\ndata root: {data_root(root)} (`mtlbench data status` checks each dataset)"


# ---------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class MethodRow:
    name: str
    level: str
    reference: str
    paper: str
    description: str


def reference_for(name: str, level: str) -> str:
    """The litmus reference of a method: ``rlw`` (loss level) or ``rgw`` (gradient level)."""
    reference = REFERENCES["gradient" if "+" in name else level]
    return "(reference)" if name == reference else reference


def _first_sentence(text: str | None) -> str:
    line = " ".join((text or "").strip().split("\n\n")[0].split())
    # a sentence ends at ". " before a capital ("Lin et al. 2022" does not end one)
    return re.split(r"\.\s+(?=[A-Z])", line)[0].rstrip(".") if line else ""


def _from_submission(name: str) -> tuple[str, str, str] | None:
    """``(level, paper, description)`` from ``submissions/<name>/submission.yaml``, if present."""
    import yaml

    file = SUBMISSIONS / name / "submission.yaml"
    if not file.is_file():
        return None
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    return (
        str(data.get("level", "")),
        str(data.get("paper") or ""),
        _first_sentence(str(data.get("description", ""))),
    )


def method_rows() -> list[MethodRow]:
    """The registered methods, then the composite built-ins (``rlw+<gradient method>``)."""
    from mtlbench import policies

    names = list(policies.registry)
    if SUBMISSIONS.is_dir():
        names += sorted(
            p.name for p in SUBMISSIONS.iterdir() if "+" in p.name and (p / "submission.yaml").is_file()
        )
    rows = []
    for name in names:
        stored = _from_submission(name)
        if "+" in name:
            level, paper, description = stored or (
                "gradient",
                "",
                f"{name}: loss- and gradient-level composite",
            )
        else:
            try:
                cls = policies.load(name)
            except (ImportError, AttributeError) as err:
                rows.append(MethodRow(name, "?", "", "", f"unavailable: {err}"))
                continue
            level = cls.level
            paper, description = (stored[1], stored[2]) if stored else ("", _first_sentence(cls.__doc__))
        rows.append(MethodRow(name, level, reference_for(name, level), paper or "—", description))
    return rows


def format_methods() -> str:
    rows = method_rows()
    return _table(
        ["method", "level", "litmus reference", "paper", "description"],
        [[r.name, r.level, r.reference, r.paper, r.description] for r in rows],
    )
