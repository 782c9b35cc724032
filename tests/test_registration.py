"""Registration: versioned ids, latest-version resolution, errors, Gymnasium mirror, hashing."""

from __future__ import annotations

import dataclasses
import json

import gymnasium
import pytest

import mtlbench
from mtlbench.registration import (
    NameNotFound,
    RegistrationError,
    VersionNotFound,
    parse_env_id,
    register,
    registry,
    spec,
)


def test_parse_env_id() -> None:
    assert parse_env_id("multimnist-hps-v1") == (None, "multimnist-hps", 1)
    assert parse_env_id("lab/nyuv2-mtan-v12") == ("lab", "nyuv2-mtan", 12)
    assert parse_env_id("qm9-hps") == (None, "qm9-hps", None)


@pytest.mark.parametrize("bad", ["x-vA", "multimnist-hps-v", "multimnist-hps-v1a", "a b-v1"])
def test_malformed_ids_fail_with_the_expected_form(bad: str) -> None:
    with pytest.raises(RegistrationError, match="name-vN"):
        parse_env_id(bad)


def test_make_without_version_gives_latest() -> None:
    base = spec("multimnist-hps-v2")
    v3 = dataclasses.replace(base, id="multimnist-hps-v3", description="test copy")
    register(v3)
    try:
        assert spec("multimnist-hps").id == "multimnist-hps-v3"
        assert spec("multimnist-hps-v2").id == "multimnist-hps-v2"
    finally:
        del registry["multimnist-hps-v3"]
        del gymnasium.registry["mtlbench/multimnist-hps-v3"]
    assert spec("multimnist-hps").id == "multimnist-hps-v2"


def test_unknown_id_suggests_close_matches() -> None:
    with pytest.raises(NameNotFound, match="Did you mean 'multimnist-hps'"):
        mtlbench.make("multimnst-hps")


def test_unknown_version_lists_known_versions() -> None:
    with pytest.raises(VersionNotFound, match="known: v1"):
        spec("multimnist-hps-v9")


def test_reregistering_needs_override() -> None:
    s = spec("multimnist-hps-v1")
    with pytest.raises(RegistrationError, match="override=True"):
        register(s)
    register(s, override=True)


def test_spec_is_json_serialisable_and_hash_is_stable() -> None:
    s = spec("multimnist-hps-v1")
    data = json.loads(s.to_json())
    assert data["id"] == "multimnist-hps-v1"
    assert type(s).from_dict(data) == s
    assert type(s).from_dict(data).hash == s.hash
    changed = s.replace({"budget.epochs": 3})
    assert changed.hash != s.hash and changed.budget.epochs == 3


def test_overrides_mark_env_unofficial_and_unknown_fields_fail() -> None:
    with pytest.raises(KeyError, match=r"no field 'budget\.epoch'"):
        spec("multimnist-hps-v1").replace({"budget.epoch": 1})
    env = mtlbench.make("multimnist-hps", device="cpu", overrides={"dataset.kwargs.limit": 8})
    assert env.official is False
    assert mtlbench.make("multimnist-hps", device="cpu").official is True


def test_protocol_fields_are_not_runtime_arguments() -> None:
    with pytest.raises(TypeError, match="overrides="):
        mtlbench.make("multimnist-hps", epochs=1)


def test_gymnasium_mirror() -> None:
    env = gymnasium.make("mtlbench/multimnist-hps-v1", device="cpu")
    assert env.unwrapped.bench_spec.id == "multimnist-hps-v1"


def test_pprint_registry_lists_envs() -> None:
    text = mtlbench.pprint_registry(print_output=False)
    assert text is not None and "multimnist-hps-v1" in text
