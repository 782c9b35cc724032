"""``mtlbench`` command line: run, benchmark, submit, check, leaderboard, data, envs, methods, litmus.

Every argument is validated before anything starts; every failure becomes one readable
line on stderr and a non-zero exit code (``--debug`` shows the traceback instead). Exit
codes: 0 done, 1 an error or a run that did not end "ok", 2 bad arguments, 130 interrupted
(Ctrl-C, or SIGTERM, which stops a command the same way).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mtlbench.harness.results import RESULTS_ENV_VAR, default_results_dir

DESCRIPTION = """\
mtlbench: train multi-task weighting methods on registered benchmark environments, store one
result file per run, and build the leaderboard that compares each method with random
weighting (RLW / RGW, the litmus test of Lin et al. 2022).

Results go to --results-dir: by default $MTLBENCH_RESULTS, else ./mtlbench-results. The
published results live in leaderboard/results; write there only on purpose, with
--results-dir leaderboard/results.

Every failure is one line on stderr and a non-zero exit code (1: an error or a failed run,
2: bad arguments, 130: interrupted); --debug shows the traceback.
"""

TOP_EXAMPLES = """\
examples:
  mtlbench envs                                        # the registered environments
  mtlbench methods                                     # the built-in weighting methods
  mtlbench benchmark --envs multimnist-hps --methods ew,rlw,rgw --seeds 0,1,2
  mtlbench litmus dwa                                  # does DWA beat random weighting?
  mtlbench check submissions/my-method
  mtlbench submit submissions/my-method
  mtlbench leaderboard build --results-dir mtlbench-results
  mtlbench <command> --help                            # a command's options and examples
"""

PAGES_DEFAULT = "<results-dir>/pages"


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines) + "\n"


# ------------------------------------------------------------------ argument types
def _csv(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    if len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"an item repeats in {text!r}")
    return items


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in _csv(text)]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"seeds must be comma-separated integers >= 0 without repeats, e.g. 0,1,2; got {text!r}"
        ) from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {text!r}")
    return seeds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def _override(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, e.g. budget.epochs=1; got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise argparse.ArgumentTypeError(f"cannot read the value of {text!r}: {err}") from None


# ------------------------------------------------------------------ the parser
def _add_results_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results-dir",
        default=None,
        metavar="DIR",
        help=f"the results folder (default: ${RESULTS_ENV_VAR}, else ./mtlbench-results); "
        "pass leaderboard/results to publish into the repository's results",
    )


def _add_runtime(p: argparse.ArgumentParser, *, seeds_help: str) -> None:
    p.add_argument("--seeds", type=_seeds, default=None, metavar="K,K,...", help=seeds_help)
    _add_results_dir(p)
    p.add_argument(
        "--device", default=None, help="cuda, cuda:1 or cpu (default: CUDA when present, else cpu)"
    )
    p.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="where the datasets are (default: $MTLBENCH_DATA, else ~/.cache/mtlbench)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="time limit per run in seconds, > 0 (default: no limit)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="torch threads per run, >= 1 (default: cores / workers); on CPU a result is "
        "bit-reproducible for a given seed and thread count",
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
        type=_override,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a protocol field of the env's spec, e.g. budget.epochs=1 (repeatable). The runs "
        "are unofficial: stored apart, under <method>@<version>+unofficial-<spec hash>/, never "
        "replacing an official result, and left out of the leaderboard; for smoke tests",
    )
    p.add_argument(
        "--rerun",
        action="store_true",
        help="train again the runs whose stored result has another spec hash or code hash (by "
        "default that is an error); each old file is kept beside the new one as "
        "seed-<k>.json.replaced-<n>",
    )


def _add_backend(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=["local", "inline", "ray"],
        default="local",
        help="local: each run in a child process, several at once (default); inline: one after "
        "another in this process (debugging); ray: one Ray task per run",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="runs at once, >= 1 (default: the number of GPUs, else cores / 2; on Ray: what the "
        "cluster offers)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address, e.g. auto or ray://head:10001 (backend ray; default: a local Ray)",
    )


def _sub(
    sub: Any, name: str, help: str, examples: str, description: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtlbench",
        description=DESCRIPTION,
        epilog=TOP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(
        sub,
        "run",
        "train one built-in method on one env over seeds, in this process",
        _examples(
            "mtlbench run --env multimnist-hps --method rlw",
            "mtlbench run --env multimnist-hps --method rlw+cagrad --seeds 0 --device cpu",
            "mtlbench run --env multimnist-hps --method ew --override budget.epochs=1   # unofficial",
        ),
    )
    p.add_argument("--env", required=True, help="env id, e.g. multimnist-hps (see `mtlbench envs`)")
    p.add_argument(
        "--method", required=True, help="method id, e.g. rlw or rlw+cagrad (see `mtlbench methods`)"
    )
    _add_runtime(p, seeds_help="comma-separated seeds >= 0 (default: 0,1,2)")

    p = _sub(
        sub,
        "benchmark",
        "run a grid of built-in methods x envs x seeds on a backend",
        _examples(
            "mtlbench benchmark --envs multimnist-hps --methods ew,rlw,rgw --seeds 0,1,2",
            "mtlbench benchmark --envs nyuv2-hps --methods ew,rlw --workers 4 --timeout 172800",
            "mtlbench benchmark --envs nyuv2-hps --methods ew --backend ray --address auto",
            "mtlbench benchmark --envs multimnist-hps --methods ew --results-dir leaderboard/results",
        ),
    )
    p.add_argument(
        "--methods", type=_csv, required=True, help="comma-separated method ids (see `mtlbench methods`)"
    )
    p.add_argument("--envs", type=_csv, required=True, help="comma-separated env ids (see `mtlbench envs`)")
    _add_backend(p)
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        metavar="DIR",
        help="checkpoint every epoch here; a killed run resumes from its last epoch (default: none)",
    )
    _add_runtime(p, seeds_help="comma-separated seeds >= 0 (default: 0,1,2)")

    p = _sub(
        sub,
        "check",
        "validate a submission folder and run the policy checker on it",
        _examples("mtlbench check submissions/my-method"),
    )
    p.add_argument("submission", type=Path, help="the submission folder (holding submission.yaml)")

    p = _sub(
        sub,
        "submit",
        "check a submission, run its envs x seeds, rebuild the leaderboard pages",
        _examples(
            "mtlbench submit submissions/my-method                     # its envs and seeds",
            "mtlbench submit submissions/my-method --envs multimnist-hps --seeds 0",
            "mtlbench submit submissions/my-method --pages-dir my-pages",
            "mtlbench submit submissions/my-method --results-dir leaderboard/results --pages-dir leaderboard",
        ),
        description="Check a submission, run its envs x seeds, rebuild the leaderboard pages.\n\n"
        "envs: all in submission.yaml means every registered env whose dataset is present under\n"
        "--data-root on this machine; the others are listed as skipped, with the reason. Runs\n"
        "already stored for the same protocol, version and code are skipped. A stored result\n"
        "made by other code at the same version is an error: bump `version` or pass --rerun.",
    )
    p.add_argument("submission", type=Path, help="the submission folder (holding submission.yaml)")
    p.add_argument(
        "--envs",
        type=_csv,
        default=None,
        help="comma-separated env ids to run instead of the submission's envs (default: its envs)",
    )
    p.add_argument(
        "--pages-dir",
        default=None,
        metavar="DIR",
        help=f"where the leaderboard pages (README.md, leaderboard.csv, index.html) are written "
        f"(default: {PAGES_DEFAULT})",
    )
    _add_backend(p)
    _add_runtime(p, seeds_help="comma-separated seeds >= 0 (default: the submission's own `seeds`)")

    p = _sub(
        sub,
        "leaderboard",
        "leaderboard commands (build)",
        _examples("mtlbench leaderboard build --help"),
    )
    lsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = _sub(
        lsub,
        "build",
        "rebuild the leaderboard pages from the stored result files",
        _examples(
            "mtlbench leaderboard build                       # mtlbench-results -> mtlbench-results/pages",
            "mtlbench leaderboard build --results-dir my-results --pages-dir my-pages",
            "mtlbench leaderboard build --results-dir leaderboard/results --pages-dir leaderboard   # publish",
        ),
    )
    _add_results_dir(b)
    b.add_argument(
        "--pages-dir",
        default=None,
        metavar="DIR",
        help=f"where README.md, leaderboard.csv and index.html are written (default: {PAGES_DEFAULT})",
    )
    b.add_argument("--out-dir", default=None, metavar="DIR", help="deprecated alias of --pages-dir")

    p = _sub(
        sub,
        "data",
        "dataset commands (list, status, prepare, verify)",
        _examples(
            "mtlbench data list",
            "mtlbench data status",
            "mtlbench data prepare nyuv2 --source ~/Downloads/nyuv2.zip",
            "mtlbench data verify nyuv2 --data-root /data/mtlbench",
        ),
    )
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    _sub(dsub, "list", "list the datasets and how each is obtained", _examples("mtlbench data list"))
    data_root_help = "the data root (default: $MTLBENCH_DATA, else ~/.cache/mtlbench)"
    s = _sub(
        dsub,
        "status",
        "show which datasets are present under the data root",
        _examples("mtlbench data status", "mtlbench data status --data-root /data/mtlbench"),
    )
    s.add_argument("--data-root", default=None, metavar="DIR", help=data_root_help)
    for name, text, example in (
        (
            "prepare",
            "convert a raw download into the data root, then verify it",
            "prepare celeba --source DIR",
        ),
        ("verify", "check one dataset under the data root", "verify nyuv2"),
    ):
        s = _sub(dsub, name, text, _examples(f"mtlbench data {example}"))
        s.add_argument("name", help="dataset name (see `mtlbench data list`)")
        s.add_argument("--data-root", default=None, metavar="DIR", help=data_root_help)
        if name == "prepare":
            s.add_argument(
                "--source",
                type=Path,
                default=None,
                metavar="PATH",
                help="a raw download (file or folder) to convert (see `mtlbench data list` for where "
                "to get it)",
            )

    _sub(sub, "envs", "list the registered environments", _examples("mtlbench envs"))
    _sub(sub, "methods", "list the built-in weighting methods", _examples("mtlbench methods"))
    _add_litmus(sub)
    return parser


def _add_litmus(sub: Any) -> None:
    from mtlbench.leaderboard.litmus import DEFAULT_SEEDS
    from mtlbench.leaderboard.stats import MIN_PAIRED_SEEDS

    p = _sub(
        sub,
        "litmus",
        "does a method beat random weighting? train it on the offline tier and print verdicts",
        _examples(
            "mtlbench litmus dwa                       # a built-in method, the offline tier, 5 seeds",
            "mtlbench litmus submissions/my-method     # a submission folder (isolated policy process)",
            "mtlbench litmus cagrad --seeds 0,1,2,3,4,5,6,7,8,9 --workers 2",
            "mtlbench litmus dwa --envs multimnist-hps --results-dir runs/litmus",
        )
        + "\nThe verdict is a screen on small offline envs, not the paper's benchmark: see docs/litmus.md.\n",
        description=textwrap.fill(
            "Train a method on every env of the offline tier over the seeds, pair each seed "
            "with stored EW and random-weighting runs (RLW for loss-level methods, RGW for gradient-level "
            "ones and composites; missing reference runs are trained into the results folder), and print "
            "per env and across envs the mean paired delta_p difference, its 95% interval, the interval's "
            "method and n, and the verdict: pass (interval above 0), fail (below 0), inconclusive "
            f"(contains 0) or insufficient seeds (fewer than {MIN_PAIRED_SEEDS} paired seeds). Exit code 0 "
            "when it ran, whatever the verdict; 1 on an error or a failed run.",
            width=88,
        ),
    )
    p.add_argument("target", help="a submission folder (with submission.yaml) or a built-in method id")
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=list(DEFAULT_SEEDS),
        metavar="K,K,...",
        help=f"comma-separated seeds >= 0 (default: {','.join(map(str, DEFAULT_SEEDS))}; a verdict needs "
        f"at least {MIN_PAIRED_SEEDS})",
    )
    p.add_argument(
        "--envs", type=_csv, default=None, help="comma-separated env ids (default: the offline tier)"
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="runs at once, >= 1 (default: the number of GPUs, else cores / 2)",
    )
    p.add_argument(
        "--results-dir",
        default=None,
        metavar="DIR",
        help=f"where new runs go (default: ${RESULTS_ENV_VAR}, else ./mtlbench-results); references "
        "are also read from the published leaderboard/results, which is never written unless named here",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="torch threads per run, >= 1 (default: cores / workers)",
    )
    p.add_argument(
        "--device", default=None, help="cuda, cuda:1 or cpu (default: CUDA when present, else cpu)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--override",
        type=_override,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a protocol field of every env, e.g. budget.epochs=1 (smoke tests: the runs are "
        "unofficial and are paired only with references made with the same overrides)",
    )


# ------------------------------------------------------------------ validation
def _check_methods(names: Sequence[str]) -> None:
    """Every built-in method id (``a`` or ``a+b``) exists and composes; else one error."""
    from mtlbench import policies

    for name in names:
        for part in name.split("+"):
            if part not in policies.registry:
                close = difflib.get_close_matches(part, list(policies.registry), n=3)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(
                    f"no method named {part!r}.{hint} `mtlbench methods` lists the built-in ones."
                )
        policies.make(name)  # a composite of the wrong levels fails here


def _check_envs(envs: Sequence[str]) -> list[str]:
    """The full ids (``name-vN``) of ``envs``; an unknown id raises, naming `mtlbench envs`."""
    from mtlbench.registration import spec

    return [spec(env).id for env in envs]


def _data_problem(dataset: str, data_root: str | None, cache: dict[str, str | None]) -> str | None:
    """Why ``dataset`` cannot be used from ``data_root`` on this machine, or None."""
    if dataset not in cache:
        from mtlbench.data import dataset_module
        from mtlbench.data.base import data_root as resolve

        try:
            module = dataset_module(dataset)
        except (ImportError, KeyError) as err:
            cache[dataset] = f"dataset {dataset!r} is unavailable in this installation ({err})"
        else:
            kwargs = {"name": dataset} if "name" in _parameters(module.verify) else {}
            problems = module.verify(resolve(data_root), **kwargs)
            cache[dataset] = problems[0] if problems else None
    return cache[dataset]


def _parameters(function: Callable[..., object]) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters)


def select_all_envs(data_root: str | None) -> tuple[list[str], list[tuple[str, str]]]:
    """What ``envs: all`` means: every registered env, not superseded, whose data is present.

    Returns ``(selected ids, [(skipped id, why)])``; registering the built-in envs first.
    """
    import mtlbench.envs  # noqa: F401  (registers the built-in envs)
    from mtlbench.registration import registry

    selected, skipped = [], []
    cache: dict[str, str | None] = {}
    for s in sorted(registry.values(), key=lambda s: s.id):
        if s.superseded_by:
            skipped.append((s.id, f"superseded by {s.superseded_by}"))
            continue
        problem = _data_problem(s.dataset.name, data_root, cache)
        if problem:
            skipped.append((s.id, problem))
        else:
            selected.append(s.id)
    return selected, skipped


# ------------------------------------------------------------------ commands
def _requests(args: argparse.Namespace, methods: Sequence[Any], envs: Sequence[str]) -> list[Any]:
    from mtlbench.harness.runner import RunRequest

    return [
        RunRequest(
            env_id=env,
            method=method,
            seed=seed,
            results_dir=args.results_dir,
            device=args.device,
            data_root=args.data_root,
            timeout_s=args.timeout,
            threads=args.threads,
            checkpoint_dir=getattr(args, "checkpoint_dir", None),
            overrides=dict(args.override),
            rerun=args.rerun,
            isolation=getattr(args, "isolation", None),
        )
        for env in envs
        for method in methods
        for seed in args.seeds
    ]


def _prepare(args: argparse.Namespace, methods: Sequence[Any], envs: Sequence[str]) -> list[Any]:
    """Validate everything and build the requests, before any run starts."""
    from mtlbench.harness.results import check_writable
    from mtlbench.harness.storage import check_requests, check_stored

    builtin = [m.entry.removeprefix("builtin:") for m in methods if m.entry.startswith("builtin:")]
    _check_methods(builtin)
    envs = _check_envs(envs)
    requests = _requests(args, methods, envs)
    check_requests(requests, workers=getattr(args, "workers", None))
    check_writable(args.results_dir)
    check_stored(requests)
    return requests


def _run_grid(args: argparse.Namespace, requests: Sequence[Any], backend: str) -> int:
    from mtlbench.harness.grid import run_grid
    from mtlbench.leaderboard.summary import summary_table

    report = run_grid(
        requests,
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
    if args.override:
        folders = sorted({str(r.path.parent) for r in requests})
        print(
            "unofficial runs (--override): stored apart from the official ones, in "
            + ", ".join(folders)
            + "; the leaderboard leaves them out"
        )
    for env in dict.fromkeys(r.spec().id for r in requests):
        print(summary_table(args.results_dir, env))
    if report.failed:
        print(
            f"mtlbench {args.command}: {len(report.failed)} run(s) did not end ok (stored with their "
            "status; see the FAILED lines)",
            file=sys.stderr,
        )
        return 1
    return 0


def _defaults(args: argparse.Namespace) -> None:
    if args.results_dir is None:
        args.results_dir = default_results_dir()


def cmd_run(args: argparse.Namespace) -> int:
    from mtlbench.harness.runner import MethodRef

    _defaults(args)
    args.seeds = args.seeds or [0, 1, 2]
    _check_methods([args.method])  # before MethodRef reads the method's version
    requests = _prepare(args, [MethodRef.builtin(args.method)], [args.env])
    return _run_grid(args, requests, backend="inline")


def cmd_benchmark(args: argparse.Namespace) -> int:
    from mtlbench.harness.runner import MethodRef

    _defaults(args)
    args.seeds = args.seeds or [0, 1, 2]
    _check_methods(args.methods)  # before MethodRef reads each method's version
    requests = _prepare(args, [MethodRef.builtin(m) for m in args.methods], args.envs)
    return _run_grid(args, requests, backend=args.backend)


def cmd_check(args: argparse.Namespace) -> int:
    from mtlbench.harness.submission_check import check_submission

    report = check_submission(args.submission)
    print(report)
    return 0 if report.ok else 1


def _pages_dir(args: argparse.Namespace) -> Path:
    return Path(args.pages_dir) if args.pages_dir else Path(args.results_dir) / "pages"


def cmd_submit(args: argparse.Namespace) -> int:
    from mtlbench.harness.results import check_writable
    from mtlbench.harness.submission import SubmissionError, load_submission
    from mtlbench.harness.submission_check import check_submission
    from mtlbench.leaderboard import build_leaderboard

    _defaults(args)
    try:
        sub = load_submission(args.submission)
    except SubmissionError:
        print(check_submission(args.submission))  # every problem, one line each
        return 1
    if args.envs:
        envs = args.envs
    elif sub.envs == "all":
        envs, skipped = select_all_envs(args.data_root)
        for env, why in skipped:
            print(f"envs: all: skipping {env}: {why}")
        if not envs:
            raise ValueError(
                "envs: all selected no env: no registered env has its data under the data root "
                "(see the skipped lines above and `mtlbench data status`)"
            )
        print(f"envs: all: running on {', '.join(envs)}")
    else:
        envs = list(sub.envs)
    args.seeds = args.seeds or list(sub.seeds)
    pages = _pages_dir(args)
    requests = _prepare(args, [sub.method_ref()], envs)
    check_writable(pages, option="--pages-dir", what="the leaderboard pages")
    report = check_submission(args.submission)
    print(report)
    if not report.ok:
        return 1
    status = _run_grid(args, requests, backend=args.backend)
    print(build_leaderboard(args.results_dir, pages))
    return status


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mtlbench.harness.results import check_writable
    from mtlbench.leaderboard import build_leaderboard

    _defaults(args)
    if args.out_dir is not None:
        print("mtlbench leaderboard build: --out-dir is deprecated; use --pages-dir", file=sys.stderr)
        if args.pages_dir is not None and args.pages_dir != args.out_dir:
            raise ValueError("--out-dir and --pages-dir name different folders; pass --pages-dir only")
        args.pages_dir = args.out_dir
    results = Path(args.results_dir)
    if not results.is_dir():
        raise FileNotFoundError(
            f"results folder {results} does not exist; nothing was written. Pass --results-dir "
            "(e.g. leaderboard/results for the published results)"
        )
    if next(results.rglob("seed-*.json"), None) is None:
        raise FileNotFoundError(
            f"no result files (<env-id>/<method>@<version>/seed-<k>.json) under {results}; nothing was "
            "written. Run `mtlbench benchmark` or `mtlbench submit` first, or pass --results-dir"
        )
    pages = _pages_dir(args)
    check_writable(pages, option="--pages-dir", what="the leaderboard pages")
    print(build_leaderboard(results, pages))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from mtlbench.data import cli as data_cli

    return data_cli.main(args)


def cmd_envs(args: argparse.Namespace) -> int:
    from mtlbench.listing import format_envs

    print(format_envs(getattr(args, "data_root", None)))
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from mtlbench.listing import format_methods

    print(format_methods())
    return 0


def cmd_litmus(args: argparse.Namespace) -> int:
    from mtlbench.leaderboard.litmus import run_litmus

    _defaults(args)
    report = run_litmus(
        args.target,
        results_dir=args.results_dir,
        envs=args.envs,
        seeds=args.seeds,
        workers=args.workers,
        threads=args.threads,
        device=args.device,
        progress=not args.no_progress,
        overrides=dict(args.override),
    )
    print(report.table())
    for line in report.failed:
        print(f"  FAILED {line}", file=sys.stderr)
    return 1 if report.failed else 0


COMMANDS = {
    "run": cmd_run,
    "benchmark": cmd_benchmark,
    "check": cmd_check,
    "submit": cmd_submit,
    "leaderboard": cmd_leaderboard,
    "data": cmd_data,
    "envs": cmd_envs,
    "methods": cmd_methods,
    "litmus": cmd_litmus,
}


def _interrupt_on_stop_signals() -> Callable[[], None]:
    """Make ``kill`` (SIGTERM, what schedulers send) stop a command as Ctrl-C does, and give
    Ctrl-C back to a command started in the background of a non-interactive shell (which
    inherits SIGINT ignored): a grid then stores its finished runs and says what it stored.

    Returns the function that restores the previous handlers (``main`` may run inside another
    program, e.g. a test runner). Only the main thread can set handlers; elsewhere it does nothing.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    if previous[signal.SIGINT] is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    restore_signals = _interrupt_on_stop_signals()
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as err:
        report = getattr(err, "report", None)  # a GridInterrupted says what was stored
        if report is not None:
            print(report.interruption_summary(), file=sys.stderr)
        else:
            print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"mtlbench {args.command}: error: {err}", file=sys.stderr)
        return 1
    finally:
        restore_signals()


if __name__ == "__main__":
    raise SystemExit(main())
