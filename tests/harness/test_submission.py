"""Submission folders: the YAML schema, its error messages, the policy import, the code hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtlbench.harness.runner import MethodRef
from mtlbench.harness.submission import (
    Submission,
    SubmissionError,
    code_hash,
    discover_submissions,
    load_submission,
)
from mtlbench.policies import version_of
from mtlbench.policies.base import Policy

REPO = Path(__file__).resolve().parents[2]
SUBMISSIONS = REPO / "submissions"

VALID = """\
name: {name}
version: "2"
level: loss
entry_point: policy.py:Toy
hyperparameters: {{scale: 2.0}}
authors: [Ada Lovelace, Alan Turing]
paper: https://arxiv.org/abs/2111.10603
envs: [multimnist-hps-v1]
description: a toy
"""

POLICY = """\
import torch
from mtlbench.policies.base import Policy


class Toy(Policy):
    name = "toy"
    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def act(self, observation):
        return torch.full_like(observation["losses"], self.scale)
"""


def _folder(tmp_path: Path, yaml_text: str | None = None, name: str = "toy", policy: str = POLICY) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "submission.yaml").write_text(yaml_text if yaml_text is not None else VALID.format(name=name))
    (folder / "policy.py").write_text(policy)
    return folder


def _problems(folder: Path) -> list[str]:
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    return info.value.problems


def test_valid_yaml_loads(tmp_path: Path) -> None:
    sub = load_submission(_folder(tmp_path))
    assert (sub.name, sub.version, sub.level) == ("toy", "2", "loss")
    assert sub.hyperparameters == {"scale": 2.0} and sub.envs == ["multimnist-hps-v1"]
    assert sub.seeds == [0, 1, 2]  # the default
    assert sub.folder == tmp_path / "toy"
    # the file itself works as well as its folder
    assert load_submission(tmp_path / "toy" / "submission.yaml") == sub


def test_unknown_field_is_rejected_by_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path, VALID.format(name="toy") + "colour: red\n")
    (problem,) = _problems(folder)
    assert problem.startswith(f"{folder / 'submission.yaml'}: field 'colour': unknown field")


def test_wrong_level(tmp_path: Path) -> None:
    folder = _folder(tmp_path, VALID.format(name="toy").replace("level: loss", "level: losss"))
    assert _problems(folder) == [
        f"{folder / 'submission.yaml'}: field 'level': expected 'loss' or 'gradient', got 'losss'"
    ]


def test_several_problems_one_line_each(tmp_path: Path) -> None:
    text = "name: Toy!\nversion: 1.10\nlevel: loss\nentry_point: nope\nauthors: []\nseeds: [1, 1]\nenvs: 3\n"
    problems = _problems(_folder(tmp_path, text))
    joined = "\n".join(problems)
    for field in ("name", "version", "entry_point", "authors", "seeds", "envs"):
        assert f"field '{field}'" in joined, field
    assert len(problems) == 6
    assert "quote it" in joined  # 1.10 would silently become 1.1


def test_missing_field(tmp_path: Path) -> None:
    text = VALID.format(name="toy").replace("entry_point: policy.py:Toy\n", "")
    assert any(
        "field 'entry_point': required field is missing" in p for p in _problems(_folder(tmp_path, text))
    )


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    text = 'name: toy\nversion: "1"\nlevel: [loss\nentry_point: policy.py:Toy\n'
    (problem,) = _problems(_folder(tmp_path, text))
    assert "line 4" in problem and "malformed YAML" in problem


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    (problem,) = _problems(_folder(tmp_path, "- just\n- a list\n"))
    assert "expected a mapping of fields" in problem
    empty = tmp_path / "empty"
    empty.mkdir()
    (problem,) = _problems(empty)
    assert "file not found" in problem


def test_name_must_match_the_folder(tmp_path: Path) -> None:
    folder = _folder(tmp_path, VALID.format(name="other"), name="toy")
    (problem,) = _problems(folder)
    assert "field 'name': expected the folder's name 'toy', got 'other'" in problem


def test_make_policy_imports_from_the_folder(tmp_path: Path) -> None:
    sub = load_submission(_folder(tmp_path))
    policy = sub.make_policy()
    assert isinstance(policy, Policy) and policy.scale == 2.0  # type: ignore[attr-defined]
    assert not (tmp_path / "toy" / "__pycache__").exists()
    # two submissions with a module of the same file name do not collide
    other = _folder(
        tmp_path, VALID.format(name="toy2"), name="toy2", policy=POLICY.replace('"toy"', '"toy2"')
    )
    assert load_submission(other).make_policy().name == "toy2"
    assert sub.make_policy().name == "toy"


def test_make_policy_checks_the_level(tmp_path: Path) -> None:
    text = VALID.format(name="toy").replace("level: loss", "level: gradient")
    sub = load_submission(_folder(tmp_path, text))
    with pytest.raises(
        SubmissionError, match="field 'level': the YAML says 'gradient' but Toy declares level 'loss'"
    ):
        sub.make_policy()


def test_make_policy_checks_the_name(tmp_path: Path) -> None:
    sub = load_submission(_folder(tmp_path, VALID.format(name="renamed"), name="renamed"))
    with pytest.raises(
        SubmissionError, match="field 'name': the submission is 'renamed' but the policy's name is 'toy'"
    ):
        sub.make_policy()


def test_make_policy_errors_name_the_field(tmp_path: Path) -> None:
    sub = load_submission(_folder(tmp_path, VALID.format(name="toy").replace("Toy", "Missing")))
    with pytest.raises(SubmissionError, match=r"field 'entry_point': module .* has no class 'Missing'"):
        sub.make_policy()
    sub = load_submission(_folder(tmp_path, VALID.format(name="bad").replace("scale", "scael"), name="bad"))
    with pytest.raises(SubmissionError, match=r"field 'hyperparameters'.*scael"):
        sub.make_policy()
    sub = load_submission(
        _folder(tmp_path, VALID.format(name="boom"), name="boom", policy="raise ImportError('x')\n")
    )
    with pytest.raises(SubmissionError, match=r"field 'entry_point': importing .* failed: ImportError"):
        sub.make_policy()


def test_entry_point_forms() -> None:
    base = dict(name="x", version="1", level="loss", authors=["a"])
    for entry in ("policy.py:Toy", "pkg/mod.py:Toy", "package.module:Toy", "builtin:rlw+cagrad"):
        assert Submission(**base, entry_point=entry).entry_point == entry
    for entry in ("../up.py:Toy", "/abs.py:Toy", "policy.py", "builtin:", "a b:C"):
        with pytest.raises(ValueError):
            Submission(**base, entry_point=entry)


def test_code_hash_covers_files_but_not_pycache(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    first = code_hash(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "policy.cpython-311.pyc").write_bytes(b"junk")
    assert code_hash(folder) == first == load_submission(folder).code_hash
    (folder / "policy.py").write_text(POLICY + "\n# changed\n")
    assert code_hash(folder) != first
    (folder / "policy.py").write_text(POLICY)
    (folder / "policy.py").rename(folder / "policy2.py")  # same bytes, other name
    assert code_hash(folder) != first


# --------------------------------------------------------------------- the repository's
REPO_SUBMISSIONS = discover_submissions(SUBMISSIONS)


def test_the_repository_has_the_builtin_submissions() -> None:
    from mtlbench.policies import registry

    names = {p.name for p in REPO_SUBMISSIONS}
    assert set(registry) <= names
    assert {"rlw+cagrad", "rlw+pcgrad", "example-loss-softmax"} <= names


@pytest.mark.parametrize("folder", REPO_SUBMISSIONS, ids=lambda p: p.name)
def test_every_repository_submission_loads(folder: Path) -> None:
    sub = load_submission(folder)
    assert sub.name == folder.name
    if sub.is_builtin:
        assert sub.entry_point == f"builtin:{sub.name}" and sub.envs == "all"
        # the YAML declares the policy class's code version, so `submit` and `benchmark` agree
        assert sub.version == version_of(sub.name) == MethodRef.builtin(sub.name).version
        if "+" in sub.name:
            assert sub.level == "gradient"


@pytest.mark.parametrize("folder", [p for p in REPO_SUBMISSIONS if "+" not in p.name], ids=lambda p: p.name)
def test_builtin_levels_match_their_classes(folder: Path) -> None:
    sub = load_submission(folder)
    try:
        cls = sub.policy_class()
    except (ImportError, AttributeError) as err:  # a built-in policy module not written yet
        pytest.skip(f"{sub.entry_point} is not importable yet: {err}")
    assert cls is not None and (cls.level, cls.name) == (sub.level, sub.name)


def test_the_third_party_example_imports_constructs_and_passes_the_checker() -> None:
    from mtlbench.harness.submission_check import check_submission

    folder = SUBMISSIONS / "example-loss-softmax"
    sub = load_submission(folder)
    assert not sub.is_builtin
    policy = sub.make_policy()
    assert policy.level == "loss" and policy.hparams() == {"temperature": 0.5, "beta": 0.9}
    assert (folder / "README.md").is_file()
    report = check_submission(folder, known_envs=lambda env_id: True)
    assert report.ok and not [r for r in report.results if r.status == "warning"], report.render()


def test_the_example_weights_favour_the_slowest_task() -> None:
    import torch

    policy = load_submission(SUBMISSIONS / "example-loss-softmax").make_policy()
    policy.reset(["a", "b"], seed=0)
    policy.act({"losses": torch.tensor([1.0, 1.0])})
    w = policy.act({"losses": torch.tensor([0.1, 1.0])})  # task a improved, b did not
    assert isinstance(w, torch.Tensor) and w[1] > w[0] and torch.isclose(w.sum(), torch.tensor(2.0))
