"""Submissions: ``submissions/<name>/submission.yaml`` plus the method's own code.

A submission folder is the unit a method author hands in (docs/design.md, "What users do with
it"); the built-in baselines are submissions too (``entry_point: builtin:<id>``). This
module owns the YAML schema, its loading with one readable line per problem, the import
of the submitted policy class, and the code hash stored in every result file.

Example ``submission.yaml``::

    name: example-loss-softmax          # id: lowercase letters, digits, '_', '+', '-'
    version: "1"
    level: loss                         # "loss" or "gradient"
    entry_point: policy.py:SoftmaxLossRatio
    hyperparameters: {temperature: 1.0}
    authors: [Ada Lovelace]
    paper: null                         # or an http(s) URL
    envs: all                           # or a list of env ids
    seeds: [0, 1, 2]
    description: optional free text
    declared_capabilities: {}           # e.g. {gc: "frees the solver's cache every epoch"}

``entry_point`` has one of three forms: ``"module.py:ClassName"`` (a file inside the
folder), ``"package.module:ClassName"`` (an importable module) or ``"builtin:<id>"`` (a
method of :data:`mtlbench.policies.registry`; ``"builtin:rlw+cagrad"`` composes).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

if TYPE_CHECKING:
    from mtlbench.harness.runner import MethodRef
    from mtlbench.policies.base import Policy

__all__ = [
    "SUBMISSION_FILE",
    "Submission",
    "SubmissionError",
    "code_hash",
    "discover_submissions",
    "load_submission",
]

SUBMISSION_FILE = "submission.yaml"
#: What a weighting method has no business doing, as ``mtlbench check`` flags it (see
#: :func:`mtlbench.harness.checker.static_findings`); a submission that does one of them
#: must declare it with a reason in ``declared_capabilities`` to be published.
CAPABILITIES: dict[str, str] = {
    "gc": "the garbage collector (gc): it reaches every object of the process",
    "inspect": "the inspect module",
    "frames": "frame and globals access (sys._getframe, __globals__, f_back, f_locals, f_globals)",
    "ctypes": "native code (ctypes, cffi)",
    "subprocess": "other processes (subprocess, multiprocessing, os.system, os.fork, os.exec*, os.spawn*)",
    "network": "the network (socket, urllib, http, requests, ...)",
    "file_writes": "writing or deleting files (open(..., 'w'/'a'/'x'), Path.write_*, os.remove, shutil, ...)",
    "dynamic_code": "code not visible to the check (eval, exec, compile, __import__, importlib)",
}
Capability = Literal[
    "gc", "inspect", "frames", "ctypes", "subprocess", "network", "file_writes", "dynamic_code"
]
NAME_RE = re.compile(r"^[a-z0-9_+-]+$")
_FILE_ENTRY_RE = re.compile(r"^(?P<file>[A-Za-z0-9_][A-Za-z0-9_./-]*\.py):(?P<attr>[A-Za-z_]\w*)$")
_MODULE_ENTRY_RE = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*)$")
_BUILTIN_ENTRY_RE = re.compile(r"^builtin:(?P<id>[a-z0-9_+-]+)$")


class SubmissionError(ValueError):
    """A submission is invalid; ``problems`` holds one line per problem, each naming the file."""

    def __init__(self, path: str | os.PathLike[str], problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = [f"{path}: {p}" for p in problems]
        super().__init__("\n".join(self.problems))


class Submission(BaseModel):
    """The contents of one ``submission.yaml`` (and, once loaded, where its folder is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="method id: lowercase letters, digits, '_', '+', '-'")
    version: str = Field(description="version of the method's code, e.g. '1' or '2024.1'")
    level: Literal["loss", "gradient"]
    entry_point: str = Field(description="'module.py:Class', 'package.module:Class' or 'builtin:<id>'")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    authors: list[str]
    paper: str | None = None
    envs: list[str] | Literal["all"] = "all"
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    description: str | None = None
    declared_capabilities: dict[Capability, str] = Field(
        default_factory=dict,
        description="capabilities the code uses, each with the reason (see CAPABILITIES)",
    )

    _folder: Path | None = PrivateAttr(default=None)

    # ----------------------------------------------------------------- validation
    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError("expected lowercase letters, digits, '_', '+' or '-' only (e.g. 'my-method')")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _check_version(cls, value: Any) -> Any:
        # YAML reads `version: 1` as an int; accept it, but not a float ("1.10" would become 1.1).
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            raise ValueError(f'expected a string; quote it, e.g. version: "{value}"')
        return value

    @field_validator("version")
    @classmethod
    def _check_version_text(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", value):
            raise ValueError(
                "expected letters, digits, '.', '_', '+' or '-' (it becomes part of a folder name)"
            )
        return value

    @field_validator("entry_point")
    @classmethod
    def _check_entry_point(cls, value: str) -> str:
        if not (
            _FILE_ENTRY_RE.fullmatch(value)
            or _MODULE_ENTRY_RE.fullmatch(value)
            or _BUILTIN_ENTRY_RE.fullmatch(value)
        ):
            raise ValueError(
                "expected 'module.py:ClassName' (a file in the folder), 'package.module:ClassName' "
                "or 'builtin:<registry id>'"
            )
        if _FILE_ENTRY_RE.fullmatch(value) and (value.startswith("/") or ".." in Path(value).parts):
            raise ValueError("the module file must be inside the submission folder")
        return value

    @field_validator("authors")
    @classmethod
    def _check_authors(cls, value: list[str]) -> list[str]:
        if not value or any(not a.strip() for a in value):
            raise ValueError("expected a non-empty list of author names")
        return value

    @field_validator("paper")
    @classmethod
    def _check_paper(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://\S+", value):
            raise ValueError("expected an http(s) URL or null")
        return value

    @field_validator("envs")
    @classmethod
    def _check_envs(cls, value: list[str] | str) -> list[str] | str:
        if value == "all":
            return value
        from mtlbench.registration import Error, parse_env_id

        if not value:
            raise ValueError("expected 'all' or a non-empty list of env ids")
        for env_id in value:
            try:
                parse_env_id(env_id)
            except Error as err:
                raise ValueError(str(err)) from None
        if len(set(value)) != len(value):
            raise ValueError("env ids must not repeat")
        return value

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("expected a non-empty list of seeds")
        if any(s < 0 for s in value):
            raise ValueError("seeds must be >= 0")
        if len(set(value)) != len(value):
            raise ValueError("seeds must not repeat")
        return value

    @field_validator("declared_capabilities")
    @classmethod
    def _check_declared(cls, value: dict[str, str]) -> dict[str, str]:
        empty = sorted(k for k, why in value.items() if not why.strip())
        if empty:
            raise ValueError(f"explain each declared capability in a sentence; empty: {empty}")
        return value

    # ----------------------------------------------------------------- properties
    @property
    def folder(self) -> Path:
        """The submission's folder (set by :func:`load_submission`)."""
        if self._folder is None:
            raise RuntimeError(f"submission {self.name!r} was not loaded from a folder")
        return self._folder

    @property
    def is_builtin(self) -> bool:
        return self.entry_point.startswith("builtin:")

    @property
    def code_hash(self) -> str:
        """SHA-256 over the folder's files (see :func:`code_hash`)."""
        return code_hash(self.folder)

    # ----------------------------------------------------------------- the policy
    def policy_class(self) -> type[Policy] | None:
        """The class named by ``entry_point``; ``None`` for a composite built-in (``a+b``)."""
        from mtlbench import policies

        if self.is_builtin:
            method = self.entry_point.partition(":")[2]
            return None if "+" in method else policies.load(method)
        if _FILE_ENTRY_RE.fullmatch(self.entry_point):
            module = self._import_file()
        else:
            module_name = self.entry_point.rpartition(":")[0]
            try:
                module = importlib.import_module(module_name)
            except ImportError as err:
                raise self._error("entry_point", f"cannot import module {module_name!r}: {err}") from err
        attr = self.entry_point.rpartition(":")[2]
        cls = getattr(module, attr, None)
        if not isinstance(cls, type):
            raise self._error("entry_point", f"module {module.__name__!r} has no class {attr!r}")
        return cls

    def make_policy(self) -> Policy:
        """Import the entry point and instantiate it with ``hyperparameters``.

        The class's declared ``level`` must equal the YAML's ``level`` and the policy's
        ``name`` the submission's ``name``; hyperparameters the class does not accept give an
        error naming the field.
        """
        from mtlbench import policies

        cls = self.policy_class()
        if cls is not None:
            declared = getattr(cls, "level", None)
            if declared != self.level:
                raise self._error(
                    "level",
                    f"the YAML says {self.level!r} but {cls.__qualname__} declares level {declared!r}",
                )
        try:
            if cls is None:
                policy = policies.make(self.entry_point.partition(":")[2], **self.hyperparameters)
            else:
                policy = cls(**self.hyperparameters)
        except TypeError as err:
            raise self._error("hyperparameters", f"the policy does not accept them: {err}") from err
        except ValueError as err:
            raise self._error("hyperparameters", str(err)) from err
        if getattr(policy, "level", None) != self.level:
            raise self._error(
                "level",
                f"the YAML says {self.level!r} but the policy declares level {getattr(policy, 'level', None)!r}",
            )
        if getattr(policy, "name", None) != self.name:
            # result files are stored under the submission's name and carry the policy's name
            raise self._error(
                "name",
                f"the submission is {self.name!r} but the policy's name is {getattr(policy, 'name', None)!r}; "
                f"set name = {self.name!r} on the class",
            )
        return policy

    def method_ref(self) -> MethodRef:
        """The harness's :class:`~mtlbench.harness.runner.MethodRef` for this submission."""
        from mtlbench.harness.runner import MethodRef

        entry = self.entry_point
        match = _FILE_ENTRY_RE.fullmatch(entry)
        if match:
            entry = f"{(self.folder / match['file']).resolve()}:{match['attr']}"
        return MethodRef(
            name=self.name,
            version=self.version,
            entry=entry,
            hparams=dict(self.hyperparameters),
            code_hash=self.code_hash,
            level=self.level,
            # submitted code runs in its own process (mtlbench.harness.isolation); built-ins need not
            isolation=None if self.is_builtin else "process",
        )

    def env_ids(self, available: list[str]) -> list[str]:
        """The env ids this submission runs on: ``available`` for ``"all"``, else its list."""
        return list(available) if self.envs == "all" else list(self.envs)

    # ----------------------------------------------------------------- helpers
    def _yaml_path(self) -> Path:
        return (self._folder or Path(".")) / SUBMISSION_FILE

    def _error(self, field: str, message: str) -> SubmissionError:
        return SubmissionError(self._yaml_path(), [f"field {field!r}: {message}"])

    def _import_file(self) -> Any:
        match = _FILE_ENTRY_RE.fullmatch(self.entry_point)
        assert match is not None
        file = self.folder / match["file"]
        if not file.is_file():
            raise self._error("entry_point", f"file {match['file']!r} not found in {self.folder}")
        # Unique per content, so two submissions (or two versions) never share a module.
        digest = hashlib.sha256(str(file.resolve()).encode() + file.read_bytes()).hexdigest()[:16]
        module_name = f"mtlbench_submission_{re.sub(r'[^0-9a-zA-Z_]', '_', self.name)}_{digest}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        module_spec = importlib.util.spec_from_file_location(module_name, file)
        if module_spec is None or module_spec.loader is None:
            raise self._error("entry_point", f"cannot import {file}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        # no __pycache__ inside the submission folder: it is not part of the submission
        dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[module_name]
            raise self._error("entry_point", f"importing {file} failed: {type(err).__name__}: {err}") from err
        finally:
            sys.dont_write_bytecode = dont_write
        return module


# --------------------------------------------------------------------------- loading
def _yaml_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path / SUBMISSION_FILE if path.is_dir() or path.suffix not in (".yaml", ".yml") else path


_UNION_TAGS = ("list[str]", "literal['all']")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(error: Any) -> str:
    """One pydantic error as ``field 'x': expected ..., got ...``."""
    loc = [str(p) for p in error["loc"]]
    kind, msg = error["type"], error["msg"]
    if loc[:1] == ["envs"] and len(loc) == 2 and not isinstance(error.get("input"), list):
        # ``envs`` is a union: one line for both branches instead of one per branch.
        return f"field 'envs': expected 'all' or a list of env ids, got {_describe(error.get('input'))}"
    loc = [p for p in loc if p not in _UNION_TAGS]
    where = ".".join(loc) or "<top level>"
    if kind == "extra_forbidden":
        allowed = ", ".join(Submission.model_fields)
        return f"field {where!r}: unknown field (allowed fields: {allowed})"
    if kind == "missing":
        return f"field {where!r}: required field is missing"
    if msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    elif msg.startswith("Input should be "):
        msg = "expected " + msg.removeprefix("Input should be ")
    return f"field {where!r}: {msg}, got {_describe(error.get('input'))}"


def load_submission(path: str | os.PathLike[str]) -> Submission:
    """Load and validate ``<folder>/submission.yaml`` (``path`` is the folder or the file).

    Every problem raises :class:`SubmissionError` with one line per problem, e.g.
    ``submissions/foo/submission.yaml: field 'level': expected 'loss' or 'gradient', got 'losss'``.
    """
    file = _yaml_file(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SubmissionError(
            file, ["file not found (a submission folder needs a submission.yaml)"]
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SubmissionError(file, [f"cannot read the file: {err}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SubmissionError(file, [f"{where}malformed YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise SubmissionError(
            file, [f"expected a mapping of fields at the top level, got {type(data).__name__}"]
        )
    try:
        submission = Submission.model_validate(data)
    except ValidationError as err:
        errors = [
            e
            for e in err.errors()
            # a list given for ``envs`` is meant as a list: the "expected 'all'" branch is noise
            if not (tuple(e["loc"][:2]) == ("envs", "literal['all']") and isinstance(e.get("input"), list))
        ]
        problems = list(dict.fromkeys(_problem(e) for e in errors))
        raise SubmissionError(file, problems) from None
    folder = file.parent
    if submission.name != folder.name:
        raise SubmissionError(
            file,
            [f"field 'name': expected the folder's name {folder.name!r}, got {submission.name!r}"],
        )
    submission._folder = folder
    return submission


def discover_submissions(root: str | os.PathLike[str] = "submissions") -> list[Path]:
    """Folders under ``root`` that hold a ``submission.yaml``, sorted by name."""
    return sorted(p.parent for p in Path(root).glob(f"*/{SUBMISSION_FILE}"))


def code_hash(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over the folder's files: sorted relative paths and contents, no ``__pycache__``.

    Each file contributes ``<relative posix path> NUL <size> NUL <bytes>`` so that renaming
    or moving content between files changes the hash.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.relative_to(folder).parts),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    for file in files:
        data = file.read_bytes()
        digest.update(f"{file.relative_to(folder).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()
