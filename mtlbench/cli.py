"""``mtlbench`` command line: run, benchmark, submit, check, leaderboard, data, envs, methods.

Every failure becomes one readable line on stderr and a non-zero exit code; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_RESULTS = "leaderboard/results"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="comma-separated seeds (default 0,1,2)")
    p.add_argument(
        "--results-dir", default=DEFAULT_RESULTS, help=f"where result files go (default {DEFAULT_RESULTS})"
    )
    p.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: CUDA when present)")
    p.add_argument(
        "--data-root", default=None, help="data root (default $MTLBENCH_DATA or ~/.cache/mtlbench)"
    )
    p.add_argument(
        "--timeout", type=float, default=None, help="time limit per run in seconds (child processes)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per run (default: cores / workers); on CPU a result is bit-reproducible "
        "for a given seed and thread count",
    )
    p.add_argument(
        "--isolation",
        choices=["none", "process"],
        default=None,
        help="where the policy runs: 'process' (its own process, seeing only its observations; the "
        "default for submitted code) or 'none' (in the run's process; the default for built-in "
        "methods). See docs/submitting.md, 'Threat model'",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a protocol field, e.g. budget.epochs=1 (the runs are marked unofficial and "
        "the leaderboard leaves them out; for smoke tests)",
    )


def _overrides(items: Sequence[str]) -> dict[str, object]:
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--override expects FIELD=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtlbench", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="train one method on one env over seeds, in this process")
    p.add_argument("--env", required=True, help="env id, e.g. multimnist-hps")
    p.add_argument("--method", required=True, help="method id, e.g. rlw or rlw+cagrad")
    _add_runtime(p)

    p = sub.add_parser("benchmark", help="run a grid of methods x envs x seeds on a backend")
    p.add_argument("--methods", type=_csv, required=True, help="comma-separated method ids")
    p.add_argument("--envs", type=_csv, required=True, help="comma-separated env ids")
    p.add_argument("--backend", choices=["local", "inline", "ray"], default="local")
    p.add_argument("--workers", type=int, default=None, help="runs at once (default: GPUs, else cores/2)")
    p.add_argument("--address", default=None, help="Ray cluster address (backend ray)")
    p.add_argument("--checkpoint-dir", default=None, help="checkpoint every epoch here; a killed run resumes")
    _add_runtime(p)

    p = sub.add_parser("check", help="validate a submission folder and run the policy checker")
    p.add_argument("submission", type=Path)

    p = sub.add_parser("submit", help="check a submission, run its grid, rebuild the leaderboard")
    p.add_argument("submission", type=Path)
    p.add_argument("--envs", type=_csv, default=None, help="override the submission's envs")
    p.add_argument("--backend", choices=["local", "inline", "ray"], default="local")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--address", default=None)
    _add_runtime(p)
    p.set_defaults(seeds=None)

    p = sub.add_parser("leaderboard", help="leaderboard commands")
    lsub = p.add_subparsers(dest="action", required=True)
    b = lsub.add_parser("build", help="rebuild leaderboard/ from the stored results")
    b.add_argument("--results-dir", default=DEFAULT_RESULTS)
    b.add_argument("--out-dir", default="leaderboard")

    p = sub.add_parser("data", help="dataset commands")
    dsub = p.add_subparsers(dest="action", required=True)
    dsub.add_parser("list", help="list the datasets and how each is obtained")
    s = dsub.add_parser("status", help="what is present under the data root")
    s.add_argument("--data-root", default=None)
    for name in ("prepare", "verify"):
        s = dsub.add_parser(name, help=f"{name} one dataset")
        s.add_argument("name")
        s.add_argument("--data-root", default=None)
        if name == "prepare":
            s.add_argument("--source", type=Path, default=None, help="a raw download to convert")

    sub.add_parser("envs", help="list the registered environments")
    sub.add_parser("methods", help="list the registered weighting methods")
    return parser


# ---------------------------------------------------------------------------- commands
def _requests(args: argparse.Namespace, methods: Sequence[object], envs: Sequence[str]) -> list:
    from mtlbench.harness.runner import RunRequest

    return [
        RunRequest(
            env_id=env,
            method=method,  # type: ignore[arg-type]
            seed=seed,
            results_dir=args.results_dir,
            device=args.device,
            data_root=args.data_root,
            timeout_s=args.timeout,
            threads=getattr(args, "threads", None),
            checkpoint_dir=getattr(args, "checkpoint_dir", None),
            overrides=_overrides(args.override),
            isolation=getattr(args, "isolation", None),
        )
        for env in envs
        for method in methods
        for seed in args.seeds
    ]


def _print_summary(results_dir: str, envs: Sequence[str]) -> None:
    from mtlbench.harness.summary import summary_table
    from mtlbench.registration import spec

    for env in envs:
        print(summary_table(results_dir, spec(env).id))


def _run_grid(args: argparse.Namespace, methods: Sequence[object], envs: Sequence[str], backend: str) -> int:
    from mtlbench import policies
    from mtlbench.harness.runner import run_grid
    from mtlbench.registration import spec

    for env in envs:
        spec(env)  # unknown ids fail here, before anything runs
    for m in methods:
        entry = getattr(m, "entry", "")
        if entry.startswith("builtin:"):
            for part in entry.removeprefix("builtin:").split("+"):
                policies.load(part)
    report = run_grid(
        _requests(args, methods, envs),
        backend=backend,
        workers=getattr(args, "workers", None),
        progress=not args.no_progress,
        ray_address=getattr(args, "address", None),
    )
    print(
        f"{len(report.written)} run(s) written, {len(report.skipped)} already stored, "
        f"{len(report.failed)} failed"
    )
    for path, why in report.failed:
        print(f"  FAILED {path}: {why}")
    _print_summary(args.results_dir, envs)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from mtlbench.harness.runner import MethodRef

    return _run_grid(args, [MethodRef.builtin(args.method)], [args.env], backend="inline")


def cmd_benchmark(args: argparse.Namespace) -> int:
    from mtlbench.harness.runner import MethodRef

    return _run_grid(args, [MethodRef.builtin(m) for m in args.methods], args.envs, backend=args.backend)


def cmd_check(args: argparse.Namespace) -> int:
    from mtlbench.harness.checker import check_submission

    report = check_submission(args.submission)
    print(report)
    return 0 if report.ok else 1


def cmd_submit(args: argparse.Namespace) -> int:
    from mtlbench.harness.checker import check_submission
    from mtlbench.harness.submission import load_submission
    from mtlbench.leaderboard import build_leaderboard
    from mtlbench.registration import registry, spec

    report = check_submission(args.submission)
    print(report)
    if not report.ok:
        return 1
    sub = load_submission(args.submission)
    envs = args.envs or (
        sorted({spec(s.id).id for s in registry.values()}) if sub.envs == "all" else list(sub.envs)
    )
    args.seeds = args.seeds or list(sub.seeds)
    status = _run_grid(args, [sub.method_ref()], envs, backend=args.backend)
    out = build_leaderboard(args.results_dir, str(Path(args.results_dir).parent))
    print(out)
    return status


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mtlbench.leaderboard import build_leaderboard

    print(build_leaderboard(args.results_dir, args.out_dir))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from mtlbench.data import cli as data_cli

    return data_cli.main(args)


def cmd_envs(args: argparse.Namespace) -> int:
    from mtlbench.registration import pprint_registry

    pprint_registry()
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from mtlbench import policies

    for name in policies.registry:
        try:
            cls = policies.load(name)
            print(f"{name:<12} {cls.level:<9} needs={','.join(sorted(cls.needs))}")
        except (ImportError, AttributeError) as err:
            print(f"{name:<12} (unavailable: {err})")
    return 0


COMMANDS = {
    "run": cmd_run,
    "benchmark": cmd_benchmark,
    "check": cmd_check,
    "submit": cmd_submit,
    "leaderboard": cmd_leaderboard,
    "data": cmd_data,
    "envs": cmd_envs,
    "methods": cmd_methods,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(
            "interrupted; completed runs are stored, re-run the same command to finish the rest",
            file=sys.stderr,
        )
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"mtlbench {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
