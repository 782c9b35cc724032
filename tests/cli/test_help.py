"""Issue 11: every option of every subcommand explains itself; the top-level help is plain text."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from mtlbench.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("mtlbench",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser and, recursively, every subcommand's parser, with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_the_walk_reaches_every_command() -> None:
    names = {" ".join(path) for path, _ in _parsers(build_parser())}
    assert {"mtlbench run", "mtlbench submit", "mtlbench leaderboard build", "mtlbench data verify"} <= names


def test_every_option_of_every_command_has_help() -> None:
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                missing += [
                    f"{' '.join(path)} {choice.dest}"
                    for choice in action._choices_actions
                    if not (choice.help or "").strip()
                ]
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without help text: {missing}"


def test_every_command_has_examples_and_plain_text_help(capsys: pytest.CaptureFixture[str]) -> None:
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert "examples:\n  mtlbench" in text, f"{' '.join(path)} --help has no examples section"
        assert "``" not in text, f"{' '.join(path)} --help shows reStructuredText quotes"


def test_defaults_in_the_help_are_the_real_ones() -> None:
    helps = {path: parser.format_help() for path, parser in _parsers(build_parser())}
    submit = " ".join(helps[("mtlbench", "submit")].split())
    assert "(default: the submission's own `seeds`)" in submit
    for command in ("run", "benchmark", "submit"):
        text = " ".join(helps[("mtlbench", command)].split())
        assert "(default: $MTLBENCH_RESULTS, else ./mtlbench-results)" in text
    parser = build_parser()
    args = parser.parse_args(["run", "--env", "multimnist-hps", "--method", "ew"])
    assert args.results_dir is None  # resolved by the command: $MTLBENCH_RESULTS, else mtlbench-results


def test_python_dash_m_mtlbench_is_the_command() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "mtlbench", "methods"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "rlw" in out.stdout and "cagrad" in out.stdout
