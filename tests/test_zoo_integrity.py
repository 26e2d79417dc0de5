"""Integrity end to end: `zoo info` verifies the manifest, every shard and the dataset, refuses paths
that leave the zoo folder, and two builds with the same seed are byte-identical (issue 26)."""

import json
import os
import shutil

import h5py
import pytest
import torch

from weightspace.cli import main
from weightspace.errors import StorageError
from weightspace.storage import confined, load_tensors, save_tensors
from weightspace.zoo import Zoo, build_zoo
from weightspace.zoo.zoo import TIMINGS, sha256

from .test_zoo import tiny_plan


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_zoo(tiny_plan(), tmp_path_factory.mktemp("zoo"))


@pytest.fixture
def copy(tmp_path, built):
    """A private copy of the zoo to tamper with, inside ``tmp_path`` (so ``tmp_path`` is outside it)."""
    return shutil.copytree(built.path, tmp_path / "zoo")


def edit_manifest(folder, change):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(change(manifest)))


def info_error(capsys, folder):
    """`zoo info`'s exit code and its one-line error."""
    code = main(["zoo", "info", str(folder)])
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    return code, err


def test_info_says_what_was_verified(built, capsys):
    assert main(["zoo", "info", str(built.path)]) == 0
    out = capsys.readouterr().out
    assert "verified: manifest (2 environments), 3 shards (sha256, shapes, finite), dataset sha256" in out
    assert "checksums verified" not in out


def test_tampered_dataset_is_detected(copy, capsys):
    with h5py.File(copy / "dataset.h5", "r+") as f:  # a valid file with one value changed
        f["train"]["trajectories"][0, 0, 0] += 1.0
    code, err = info_error(capsys, copy)
    assert code == 2 and "dataset.h5" in err and "dataset_sha256" in err


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: [], "not a weightspace zoo manifest"),
        (lambda m: {**m, "base": None}, "'base' is null but the zoo is marked complete"),
        (lambda m: {k: v for k, v in m.items() if k != "environments"}, "missing key 'environments'"),
        (lambda m: {**m, "environments": {}}, "'environments' must be a list"),
        (lambda m: {**m, "seed": True}, "'seed' must be an integer"),
        (
            lambda m: {**m, "environments": [{**e, "sha256": None} for e in m["environments"]]},
            "'environments[0].sha256' must be a string",
        ),
        (
            lambda m: {**m, "environments": [m["environments"][0], m["environments"][0]]},
            "environment {env} is listed twice",
        ),
        (lambda m: {**m, "environments": m["environments"][:1]}, "must list each seen environment"),
    ],
    ids=["list", "base-null", "no-environments", "environments-object", "bool-seed", "null-sha", "twice", "missing"],
)
def test_malformed_manifest_is_one_line_naming_the_key(copy, capsys, change, message):
    env = json.loads((copy / "manifest.json").read_text())["environments"][0]["env_index"]
    edit_manifest(copy, change)
    code, err = info_error(capsys, copy)
    assert code == 2 and message.format(env=env) in err


def _first_environment(change):
    """A manifest change applied to the first environment's record."""
    return lambda m: {**m, "environments": [change(m["environments"][0]), *m["environments"][1:]]}


def _expert(record, **change):
    """A dropped-expert entry: the first kept expert's record, the ``reason`` added, ``change`` applied."""
    return {**record["experts"][0], "reason": "validation loss above 1", **change}


NESTED_CASES = {
    "dropped-int": (_first_environment(lambda e: {**e, "dropped": [1]}), "environments[0].dropped[0] must be a JSON"),
    "dropped-no-reason": (
        _first_environment(lambda e: {**e, "dropped": [{**e["experts"][0]}]}),
        "missing key 'environments[0].dropped[0].reason'",
    ),
    "dropped-string-seed": (
        _first_environment(lambda e: {**e, "dropped": [_expert(e), _expert(e, seed="7")]}),
        "'environments[0].dropped[1].seed' must be an integer",
    ),
    "normalization-no-std": (lambda m: {**m, "normalization": {"mean": [0.0]}}, "missing key 'normalization.std'"),
    "normalization-strings": (
        lambda m: {**m, "normalization": {**m["normalization"], "mean": ["0"] * len(m["normalization"]["mean"])}},
        "'normalization.mean' must be a list of finite numbers",
    ),
    "normalization-empty": (lambda m: {**m, "normalization": {"mean": [], "std": []}}, "'normalization.mean'"),
    "normalization-zero-std": (
        lambda m: {**m, "normalization": {**m["normalization"], "std": [0.0] * len(m["normalization"]["std"])}},
        "'normalization.std' must be a list of positive numbers",
    ),
    "normalization-lengths": (
        lambda m: {**m, "normalization": {**m["normalization"], "std": [1.0]}},
        "'normalization' must hold one mean and one std per channel",
    ),
    "normalization-one-channel": (
        lambda m: {**m, "normalization": {"mean": [0.0], "std": [1.0]}},
        "'normalization' must hold 2 channels",
    ),
    "graph-spec-no-params": (
        lambda m: {**m, "graph_spec": {k: v for k, v in m["graph_spec"].items() if k != "params"}},
        "'graph_spec' is not a valid graph spec",
    ),
    "graph-spec-params-int": (lambda m: {**m, "graph_spec": {**m["graph_spec"], "params": 3}}, "'graph_spec'"),
    "graph-spec-groups-strings": (
        lambda m: {**m, "graph_spec": {**m["graph_spec"], "groups": ["a"]}},
        "'graph_spec' is not a valid graph spec",
    ),
}


@pytest.mark.parametrize("change, message", NESTED_CASES.values(), ids=list(NESTED_CASES))
def test_malformed_nested_manifest_values_are_one_line_naming_the_key(copy, capsys, change, message):
    """Dropped experts, the normalization and the graph spec, which the zoo reads field by field."""
    edit_manifest(copy, change)
    code, err = info_error(capsys, copy)
    assert code == 2 and "manifest.json" in err and message in err, err


def test_shard_with_an_extra_expert_is_detected(copy, capsys):
    manifest = json.loads((copy / "manifest.json").read_text())
    record = manifest["environments"][0]
    shard = copy / record["file"]
    params, metadata = load_tensors(shard)
    save_tensors(shard, {k: torch.cat([v, v[:1]]) for k, v in params.items()}, metadata)
    edit_manifest(copy, lambda m: {**m, "environments": [{**record, "sha256": sha256(shard)}, *m["environments"][1:]]})
    code, err = info_error(capsys, copy)
    assert code == 2 and record["file"] in err and "holds 3 experts; the manifest lists 2" in err


def test_non_finite_shard_with_a_matching_sha256_is_detected(copy, capsys):
    shard = copy / "base.safetensors"
    params, metadata = load_tensors(shard)
    params["layers.0.weight"][0, 0, 0] = float("nan")
    save_tensors(shard, params, metadata)
    edit_manifest(copy, lambda m: {**m, "base": {**m["base"], "sha256": sha256(shard)}})
    code, err = info_error(capsys, copy)
    assert code == 2 and "base.safetensors" in err and "'layers.0.weight' contains NaN" in err


def test_shard_with_a_wrong_shape_is_detected(copy, capsys):
    shard = copy / "base.safetensors"
    params, metadata = load_tensors(shard)
    save_tensors(shard, {**params, "layers.0.weight": params["layers.0.weight"][:, :4]}, metadata)
    edit_manifest(copy, lambda m: {**m, "base": {**m["base"], "sha256": sha256(shard)}})
    code, err = info_error(capsys, copy)
    assert code == 2 and "base.safetensors" in err and "'layers.0.weight' has shape (1, 4, 2)" in err


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_shard_path_outside_the_zoo_is_refused(copy, tmp_path, capsys, kind):
    outside = tmp_path / "outside.safetensors"
    shutil.copy(copy / "base.safetensors", outside)  # a valid shard, so only the path is wrong
    if kind == "parent":
        name = "../outside.safetensors"
    elif kind == "absolute":
        name = str(outside)
    else:
        name = "link.safetensors"
        os.symlink(outside, copy / name)
    edit_manifest(copy, lambda m: {**m, "base": {**m["base"], "file": name}})
    code, err = info_error(capsys, copy)
    assert code == 2 and "base.file" in err and repr(name) in err


def test_dataset_path_outside_the_zoo_is_refused(copy, capsys):
    edit_manifest(copy, lambda m: {**m, "dataset": "../dataset.h5"})
    code, err = info_error(capsys, copy)
    assert code == 2 and "dataset = '../dataset.h5' points outside" in err


def test_confined_accepts_paths_inside_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "sub", tmp_path / "inner")
    assert confined(tmp_path, "sub/../inner/a.txt", "x") == tmp_path / "sub/../inner/a.txt"
    for bad in ("", ".", 3, None):
        with pytest.raises(StorageError, match="^x "):
            confined(tmp_path, bad, "x")


def test_old_manifest_with_timings_still_loads(copy):
    """Zoos built before timings moved to timings.json carry `seconds` in the base record."""
    edit_manifest(copy, lambda m: {**m, "base": {**m["base"], "seconds": 1.5}})
    assert Zoo.load(copy).manifest["base"]["seconds"] == 1.5


def test_same_seed_builds_are_byte_identical(tmp_path, built):
    again = build_zoo(tiny_plan(), tmp_path / "again").path
    names = sorted(p.name for p in built.path.iterdir())
    assert names == sorted(p.name for p in again.iterdir()) and TIMINGS in names
    for name in names:
        if name != TIMINGS:
            assert (built.path / name).read_bytes() == (again / name).read_bytes(), name
    assert json.loads((again / TIMINGS).read_text())["base_seconds"] > 0
    record = json.loads(load_tensors(again / "base.safetensors")[1]["record"])
    assert "seconds" not in record and "seconds" not in json.loads((again / "manifest.json").read_text())["base"]
