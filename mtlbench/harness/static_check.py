"""The static check of ``mtlbench check``: what a weighting method has no business doing.

:func:`static_findings` reads every ``.py`` file of a submission folder with :mod:`ast` and
reports, with ``file:line``, uses of ``gc``, ``inspect``, frame access (``sys._getframe``,
``__globals__``, ``f_back``, ...), ``ctypes``, subprocesses, sockets and other network
modules, file writes and dynamic code (``eval``/``exec``). A use is allowed only when
``submission.yaml`` declares and explains it (``declared_capabilities``); the check itself
(:func:`mtlbench.harness.submission_check.check_static`) turns findings into a pass, a warning or a
failure. It is a screen for reviewers, not a sandbox: the isolation of
:mod:`mtlbench.harness.isolation` is what keeps a policy away from the model.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "static_findings"]


@dataclass(frozen=True)
class Finding:
    """One use of a capability a weighting method has no business with, at ``file:line``."""

    file: str
    line: int
    capability: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.detail} ({self.capability})"


_MODULES = {
    "gc": "gc",
    "inspect": "inspect",
    "ctypes": "ctypes",
    "cffi": "ctypes",
    "subprocess": "subprocess",
    "multiprocessing": "subprocess",
    "pty": "subprocess",
    "socket": "network",
    "ssl": "network",
    "urllib": "network",
    "http": "network",
    "requests": "network",
    "httpx": "network",
    "aiohttp": "network",
    "ftplib": "network",
    "smtplib": "network",
    "shutil": "file_writes",
    "tempfile": "file_writes",
    "importlib": "dynamic_code",
}
_FRAME_ATTRS = frozenset(
    {"_getframe", "__globals__", "f_back", "f_locals", "f_globals", "gi_frame", "tb_frame"}
)
_OS_PROCESS = frozenset({"system", "popen", "fork", "forkpty", "kill", "killpg"})
_OS_PROCESS_PREFIXES = ("exec", "spawn", "posix_spawn")
_OS_FILES = frozenset(
    {
        "remove",
        "unlink",
        "rmdir",
        "removedirs",
        "rename",
        "renames",
        "replace",
        "mkdir",
        "makedirs",
        "truncate",
        "symlink",
        "link",
        "chmod",
        "chown",
        "open",
        "write",
    }
)
_PATH_WRITES = frozenset(
    {"write_text", "write_bytes", "unlink", "rmdir", "touch", "symlink_to", "hardlink_to"}
)
_DYNAMIC = frozenset({"eval", "exec", "compile", "__import__"})


def _os_capability(attr: str) -> str | None:
    if attr in _OS_PROCESS or attr.startswith(_OS_PROCESS_PREFIXES):
        return "subprocess"
    if attr in _OS_FILES:
        return "file_writes"
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.findings: list[Finding] = []
        self.os_names = {"os"}  # names bound to the os module

    def flag(self, node: ast.AST, capability: str, detail: str) -> None:
        self.findings.append(Finding(self.file, getattr(node, "lineno", 0), capability, detail))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            if root in _MODULES:
                self.flag(node, _MODULES[root], f"import {alias.name}")
            if alias.name == "os":
                self.os_names.add(alias.asname or "os")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        root = (node.module or "").split(".")[0]
        if root in _MODULES:
            self.flag(node, _MODULES[root], f"from {node.module} import ...")
        for alias in node.names:
            if root == "os" and _os_capability(alias.name):
                self.flag(node, _os_capability(alias.name) or "", f"from os import {alias.name}")
            if root == "sys" and alias.name in _FRAME_ATTRS:
                self.flag(node, "frames", f"from sys import {alias.name}")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _FRAME_ATTRS:
            self.flag(node, "frames", f"access to .{node.attr}")
        elif isinstance(node.value, ast.Name) and node.value.id in self.os_names:
            capability = _os_capability(node.attr)
            if capability is not None:
                self.flag(node, capability, f"os.{node.attr}")
        elif node.attr in _PATH_WRITES:
            self.flag(node, "file_writes", f".{node.attr}()")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in _DYNAMIC:
            self.flag(node, "dynamic_code", f"{func.id}()")
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value in _FRAME_ATTRS:
                self.flag(node, "frames", f"getattr(..., {name.value!r})")
            elif not isinstance(name, ast.Constant):
                pass  # a computed attribute name: too common to flag (hparams, registries)
        is_open = (isinstance(func, ast.Name) and func.id == "open") or (
            isinstance(func, ast.Attribute) and func.attr == "open" and not _is_os(func.value, self.os_names)
        )
        if is_open:
            mode = node.args[1] if len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "mode":
                    mode = kw.value
            if mode is not None and not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
                self.flag(node, "file_writes", "open() with a computed mode")
            elif mode is not None and set(str(mode.value)) & set("wax+"):
                self.flag(node, "file_writes", f"open(..., {mode.value!r})")
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "save"
            and isinstance(func.value, ast.Name)
            and func.value.id in ("torch", "np", "numpy")
        ):
            self.flag(node, "file_writes", f"{func.value.id}.save()")
        self.generic_visit(node)


def _is_os(node: ast.AST, os_names: set[str]) -> bool:
    return isinstance(node, ast.Name) and node.id in os_names


def static_findings(folder: str | os.PathLike[str]) -> list[Finding]:
    """Uses of :data:`~mtlbench.harness.submission.CAPABILITIES` in the folder's Python files.

    Read with :mod:`ast`, never imported. A file that does not parse is one finding of
    ``dynamic_code`` (nothing in it can be checked).
    """
    root = Path(folder)
    findings: list[Finding] = []
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        except (SyntaxError, UnicodeDecodeError) as err:
            findings.append(
                Finding(rel, getattr(err, "lineno", 0) or 0, "dynamic_code", f"cannot parse: {err}")
            )
            continue
        scanner = _Scanner(rel)
        scanner.visit(tree)
        findings.extend(scanner.findings)
    return findings
