"""``mtlbench data list | status | prepare NAME | verify NAME``."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from importlib import import_module
from types import ModuleType

from mtlbench.data import DATASETS, data_root, dataset_module
from mtlbench.data.base import SOURCES, prepare_command


def _modules() -> dict[str, ModuleType | ModuleNotFoundError]:
    out: dict[str, ModuleType | ModuleNotFoundError] = {}
    for name in DATASETS:
        try:
            out[name] = dataset_module(name)
        except ModuleNotFoundError as err:  # not installed in this build
            out[name] = err
    return out


def _name_kwargs(function: Callable[..., object], name: str) -> dict[str, str]:
    """``{"name": name}`` for modules serving several datasets (office31/officehome, pawsx/udpos)."""
    return {"name": name} if "name" in inspect.signature(function).parameters else {}


def cmd_list() -> int:
    # a module serving several datasets is listed once, under all its names
    groups: dict[int, list[str]] = {}
    modules = _modules()
    for name, module in modules.items():
        groups.setdefault(id(module), []).append(name)
    for names in groups.values():
        module = modules[names[0]]
        text = getattr(module, "DESCRIPTION", f"unavailable: {module}")
        print(f"{', '.join(names)}\n    {text}")
        for name in names:
            if name in SOURCES and not SOURCES[name].bundled:
                print(f"    {name}: {SOURCES[name].instructions()}")
        print()
    return 0


def cmd_status(root: str | None) -> int:
    base = data_root(root)
    print(f"data root: {base}")
    for name, module in _modules().items():
        if isinstance(module, Exception):
            print(f"  {name:<11} unavailable ({module})")
            continue
        problems = module.verify(base, **_name_kwargs(module.verify, name))
        if not problems:
            print(f"  {name:<11} ok")
            continue
        # the first problem only: the install hint below replaces the rest
        more = f" (+{len(problems) - 1} more: `mtlbench data verify {name}`)" if len(problems) > 1 else ""
        print(f"  {name:<11} {problems[0].split('. Run `')[0]}{more}")
        for line in status_hint(name):
            print(f"  {'':<11} {line}")
    return 0


def status_hint(name: str) -> list[str]:
    """The command that installs ``name`` from here and, if it needs files, where they come from."""
    lines = [f"to install: {prepare_command(name)}"]
    source = SOURCES.get(name)
    if source is not None and not source.bundled and not source.downloads:
        lines.append(f"PATH: {source.path}")
        lines.append(f"get {source.files} from {source.url}")
    return lines


def cmd_verify(name: str, root: str | None) -> int:
    module = dataset_module(name)
    problems = module.verify(data_root(root), **_name_kwargs(module.verify, name))
    if problems:
        print(f"{name}: {len(problems)} problem(s) under {data_root(root)}")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"{name}: ok ({data_root(root)})")
    return 0


def cmd_prepare(name: str, root: str | None, source: object) -> int:
    module = dataset_module(name)
    module.prepare(data_root(root), source=source, **_name_kwargs(module.prepare, name))
    return cmd_verify(name, root)


def main(args: argparse.Namespace) -> int:
    import_module("mtlbench.data")
    if args.action == "list":
        return cmd_list()
    if args.action == "status":
        return cmd_status(args.data_root)
    if args.action == "verify":
        return cmd_verify(args.name, args.data_root)
    return cmd_prepare(args.name, args.data_root, args.source)
