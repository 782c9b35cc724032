"""One short epoch of every env family on CUDA: does each train end to end on a GPU, and how fast?

For each family the script writes the test fixtures (tests/data/*_fixtures.py: the real
on-disk formats, random content) or uses the bundled data (MultiMNIST, the offline tier),
builds the env on the device with the family's real backbone where the fixture allows it
(random init: no weights are downloaded), and runs one epoch of EW and of MGDA (the
parameter-level Gramian path) through :func:`mtlbench.train`, the harness's own loop. It
prints, per (env, method): steps, wall time, time per step, peak GPU memory and whether
the run ended ``ok`` with finite metrics. The numbers are for fixtures, not for the
registered datasets: they show that the device path works and what a step costs, not an
epoch of the real data (docs/performance.md records them).

    python benchmarks/gpu_epoch.py [--device cuda] [--families nyuv2,multimnist] [--out FILE]

QM9 is left out: its data is PyPI ``qm9pack`` (224 MB installed), too large to carry to a
lent GPU machine; its model (the MPNN) runs in the same MTLEnv code as the others.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.data.* fixture writers

import mtlbench  # noqa: E402
from mtlbench.harness.train import env_kwargs_for  # noqa: E402

Setup = Callable[[Path], tuple[str, dict[str, Any]]]  # data root -> (env id, overrides)


def _nyuv2(arch: str) -> Setup:
    def setup(root: Path) -> tuple[str, dict[str, Any]]:
        from tests.data.dense_fixtures import write_nyuv2

        if not (root / "nyuv2").exists():
            write_nyuv2(root, n_train=20, n_test=4, size=(288, 384))
        return f"nyuv2-{arch}", {
            "dataset.kwargs.val_ids": [0, 1, 2, 3],
            "model.kwargs.pretrained": False,
            "budget.epochs": 1,
        }

    return setup


def _cityscapes(root: Path) -> tuple[str, dict[str, Any]]:
    from tests.data.dense_fixtures import write_cityscapes

    write_cityscapes(root, n_train=36, n_test=4, size=(128, 256))
    return "cityscapes-hps", {
        "dataset.kwargs.val_ids": [0, 1, 2, 3],
        "model.kwargs.pretrained": False,
        "budget.epochs": 1,
    }


def _celeba(root: Path) -> tuple[str, dict[str, Any]]:
    from tests.data.vision_fixtures import write_celeba

    write_celeba(root, {"train": 256, "val": 32, "test": 32}, size=(64, 64))
    return "celeba-hps", {
        "dataset.kwargs.check_manifest": False,
        "optimizer.batch_size": 64,
        "budget.epochs": 1,
    }


def _office(name: str) -> Setup:
    def setup(root: Path) -> tuple[str, dict[str, Any]]:
        from tests.data.vision_fixtures import OFFICE_DOMAINS, write_office

        write_office(root, name, per_class={d: 12 for d in OFFICE_DOMAINS[name]}, size=(224, 224))
        return f"{name}-hps", {
            "dataset.kwargs.check_manifest": False,
            "dataset.kwargs.split_lists": "rule-v1",
            "model.kwargs.pretrained": False,
            "optimizer.batch_size": 8,
            "budget.epochs": 1,
        }

    return setup


def _xtreme(name: str) -> Setup:
    def setup(root: Path) -> tuple[str, dict[str, Any]]:
        from tests.data.text_fixtures import vocabulary, write_pawsx, write_udpos, write_vocab

        if name == "pawsx":
            write_pawsx(root, counts={"train": 64, "val": 8, "test": 8})
        else:
            write_udpos(root, treebanks={"en": ["ewt"], "zh": ["gsd"], "te": ["mtg"], "vi": ["vtb"]})
        write_vocab(root / "vocab.txt")
        return f"{name}-hps", {
            "dataset.kwargs.tokenizer": str(root / "vocab.txt"),
            "dataset.kwargs.max_length": 64,
            "model.kwargs.pretrained": False,
            "model.kwargs.config_overrides": {"vocab_size": len(vocabulary())},
            "optimizer.batch_size": 8,
            "budget.epochs": 1,
        }

    return setup


def _bundled(env_id: str) -> Setup:
    def setup(root: Path) -> tuple[str, dict[str, Any]]:
        return env_id, {"budget.epochs": 1}

    return setup


def families() -> dict[str, Setup]:
    from mtlbench.envs.tier import OFFLINE_TIER

    out: dict[str, Setup] = {f"nyuv2-{a}": _nyuv2(a) for a in ("hps", "cross_stitch", "mtan", "nddr")}
    out.update(
        {
            "cityscapes-hps": _cityscapes,
            "celeba-hps": _celeba,
            "office31-hps": _office("office31"),
            "officehome-hps": _office("officehome"),
            "pawsx-hps": _xtreme("pawsx"),
            "udpos-hps": _xtreme("udpos"),
        }
    )
    for env_id in OFFLINE_TIER:
        if not env_id.startswith("qm9"):
            out[env_id.rsplit("-v", 1)[0]] = _bundled(env_id)
    return out


def run_one(env_id: str, overrides: dict[str, Any], root: Path, method: str, device: str) -> dict[str, Any]:
    policy = mtlbench.policies.make(method)
    env = mtlbench.make(
        env_id, device=device, data_root=str(root), overrides=overrides, **env_kwargs_for(policy)
    )
    try:
        result = mtlbench.train(env, policy, seed=0)
    finally:
        env.close()
    finite = result.selected is not None and all(
        math.isfinite(v) for task in result.selected.test.values() for v in task.values()
    )
    return {
        "env": env_id,
        "method": method,
        "status": result.status,
        "message": result.message,
        "finite_metrics": finite,
        "steps": result.cost.steps,
        "wall_s": result.cost.wall_time_s,
        "ms_per_step": round(1000 * result.cost.time_per_step_s, 2),
        "peak_mb": result.cost.peak_memory_mb,
        "device": result.cost.device,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--families", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--methods", default="ew,mgda", help="methods to run per env (default ew,mgda)")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    chosen = families()
    if args.families:
        wanted = [f.strip() for f in args.families.split(",") if f.strip()]
        unknown = sorted(set(wanted) - set(chosen))
        if unknown:
            parser.error(f"unknown families {unknown}; known: {sorted(chosen)}")
        chosen = {k: chosen[k] for k in wanted}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mtlbench-gpu-epoch-") as tmp:
        for family, setup in chosen.items():
            root = Path(tmp) / family
            root.mkdir()
            try:
                env_id, overrides = setup(root)
            except Exception as err:
                rows.append({"env": family, "method": "-", "status": f"setup failed: {err!r}"})
                continue
            for method in args.methods.split(","):
                start = time.perf_counter()
                try:
                    row = run_one(env_id, overrides, root, method, args.device)
                except Exception:
                    row = {
                        "env": env_id,
                        "method": method,
                        "status": "raised",
                        "message": traceback.format_exc(),
                    }
                row["total_s"] = round(time.perf_counter() - start, 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
    from tabulate import tabulate

    cols = ["env", "method", "status", "finite_metrics", "steps", "ms_per_step", "peak_mb", "total_s"]
    print(tabulate([[r.get(c, "") for c in cols] for r in rows], headers=cols))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r.get("status") == "ok" and r.get("finite_metrics") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
