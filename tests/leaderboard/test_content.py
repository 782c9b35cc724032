"""What the page and the README say: the verdict table, method identity, plot styles, labels."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from mtlbench.leaderboard import build_leaderboard
from mtlbench.leaderboard.formatting import short_authors, verdict_matrix
from mtlbench.leaderboard.plots import REFERENCE_STYLES, _place_labels, _style, method_styles

N_BOOT = 200


def _submission(root: Path, name: str, **fields: str) -> None:
    (root / name).mkdir(parents=True)
    text = "\n".join(
        [
            f"name: {name}",
            'version: "1"',
            "level: loss",
            "entry_point: policy.py:Policy",
            "authors: [Ada Lovelace, Charles Babbage, Mary Somerville]",
            *(f"{k}: {v}" for k, v in fields.items()),
        ]
    )
    (root / name / "submission.yaml").write_text(text + "\n")


def test_method_identity_from_the_submission(results_dir: Path, tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    _submission(subs, "good", paper="https://example.org/good", description="A good method.")
    (subs / "broken").mkdir()
    (subs / "broken" / "submission.yaml").write_text("name: [\n")  # invalid: no card, no crash
    build_leaderboard(results_dir, tmp_path / "out", n_boot=N_BOOT, registry=None, submissions=subs)
    page = (tmp_path / "out" / "index.html").read_text()
    assert '<a href="https://example.org/good">good</a>' in page
    assert 'title="A good method."' in page and "Lovelace et al." in page
    assert "Ada Lovelace, Charles Babbage, Mary Somerville" in page  # the methods table
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "[good](https://example.org/good)@1" in readme and "A good method." in readme
    # without submissions: bare ids, same numbers
    build_leaderboard(results_dir, tmp_path / "bare", n_boot=N_BOOT, registry=None, submissions=None)
    bare = (tmp_path / "bare" / "index.html").read_text()
    assert "example.org" not in bare and '<span class="name">good</span>' in bare
    csv_a, csv_b = ((tmp_path / d / "leaderboard.csv").read_bytes() for d in ("out", "bare"))
    assert csv_a == csv_b


def test_references_are_marked(results_dir: Path, tmp_path: Path) -> None:
    build_leaderboard(results_dir, tmp_path / "out", n_boot=N_BOOT, registry=None, submissions=None)
    page = (tmp_path / "out" / "index.html").read_text()
    first = page.split("<table", 2)[1]
    for name, tag in (
        ("rlw", "loss-level reference"),
        ("rgw", "gradient-level reference"),
        ("ew", "Δp baseline"),
    ):
        row = re.search(
            rf'<tr class="ref"><th scope="row" class="m"[^>]*><span class="name">{name}</span>.*?</tr>', first
        )
        assert row is not None, name
        assert tag in row.group(0)
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "rlw@1 (loss-level reference)" in readme and "| reference " in readme


def test_verdict_matrix_has_a_dash_where_a_method_has_no_runs(
    results_dir: Path, tmp_path: Path, add_result: Callable[..., Path]
) -> None:
    for name in ("ew", "rlw", "good"):
        for seed in range(3):
            add_result(name, "loss", seed, 1.0 if name != "ew" else 0.0, env_id="other-hps-v1")
    for name, values in {"ew": [0.0, 0.0], "rlw": [1.2, 0.8], "good": [6.2, 5.8]}.items():
        for seed, x in enumerate(values, start=3):  # a verdict needs 5 paired seeds
            add_result(name, "loss", seed, x)
    lb = build_leaderboard(results_dir, tmp_path / "out", n_boot=N_BOOT, registry=None).leaderboard
    matrix = {a.method: cells for a, cells in verdict_matrix(lb)}
    assert [c is None for c in matrix["bad@1"]] == [True, False]  # other-hps-v1 sorts first
    good_other, good_toy = matrix["good@1"]
    assert good_other is not None and good_toy is not None
    assert good_toy.verdict == "pass" and good_toy.n == 5 and good_toy.text.endswith(", n = 5")
    assert good_other.verdict == "insufficient seeds" and good_other.text.endswith(", n = 3")
    assert "95% bootstrap-t" in good_toy.title and "n = 5 paired seeds" in good_toy.title
    assert matrix["rlw@1"][0] is not None and matrix["rlw@1"][0].verdict == "reference"
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.split("<table", 2)[1].count('<th scope="col"') == 6  # method, 2 envs, 3 summary columns


def test_every_method_has_its_own_style(results_dir: Path, tmp_path: Path) -> None:
    lb = build_leaderboard(
        results_dir, tmp_path / "out", n_boot=N_BOOT, registry=None, formats=()
    ).leaderboard
    styles = method_styles(lb)
    methods = [s for k, s in styles.items() if k.rpartition("@")[0] not in REFERENCE_STYLES]
    combos = {(s.color, s.marker) for s in methods}
    assert len(combos) == len(methods)
    assert all(not s.reference for s in methods)
    assert {styles[f"{n}@1"] for n in ("ew", "rlw", "rgw")} == set(REFERENCE_STYLES.values())
    # 30 methods still get 30 distinct (colour, marker, line style) combinations
    from mtlbench.leaderboard.plots import LINESTYLES, MARKERS, PALETTE

    many = {(PALETTE[i % 9], MARKERS[i % 10], LINESTYLES[(i // 9) % 3]) for i in range(30)}
    assert len(many) == 30


def test_point_labels_do_not_overlap() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    # a tight cluster, as the 60-80 ms cluster of the stored cost plot
    points = [(60 + (i % 5), -0.1 - 0.02 * (i // 5), f"method-{i}") for i in range(15)]
    points.append((200, 0.5, "far"))
    with _style():
        fig = Figure(figsize=(5.8, 5.0), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.scatter([p[0] for p in points], [p[1] for p in points])
        ax.margins(x=0.2, y=0.3)
        _place_labels(ax, points)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        # the text's own box (an Annotation's get_window_extent also covers its leader line)
        boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]
    assert len(boxes) == len(points)
    overlaps = [
        (ax.texts[i].get_text(), ax.texts[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ]
    assert overlaps == []


def test_short_authors() -> None:
    assert short_authors(("Ozan Sener", "Vladlen Koltun")) == "Sener and Koltun"
    assert short_authors(("Xi Lin", "Xiaoyuan Zhang", "Zhiyuan Yang")) == "Lin et al."
    assert short_authors(("mtlbench developers",)) == "mtlbench developers"
