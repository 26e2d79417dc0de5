"""The two-channel example plugin (docs/examples/gray-scott-plugin), installed from a temporary
directory as a user would: its components keep their contracts and run through the whole pipeline
(simulate, zoo build, train, evaluate) from the command line, on its own tiny run config."""

import json
import math
from pathlib import Path

import pytest

from weightspace.cli import main
from weightspace.data.dataset import load_dataset
from weightspace.registry import Registry, default_registry
from weightspace.testing import check_architecture, check_system

from .conftest import EXAMPLES, install_example

EXAMPLE = EXAMPLES / "gray-scott-plugin"
TINY_SYSTEM = {"n_feed": 2, "n_kill": 2, "n_seen": 2, "n_train": 3, "n_test": 1, "n_frames": 6, "resolution": 8}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    return install_example("gray-scott-plugin", tmp_path_factory)


@pytest.fixture
def on_path(installed, monkeypatch):
    """The installed plugin on sys.path, and the process-wide registry rebuilt to see it (and rebuilt
    again without it afterwards)."""
    monkeypatch.syspath_prepend(str(installed))
    default_registry.cache_clear()
    yield installed
    default_registry.cache_clear()


def test_example_components_keep_their_contracts(on_path):
    registry = Registry()
    for kind, name in (("systems", "gray-scott"), ("architectures", "residual-cnn")):
        assert registry.entries(kind)[name].source == "gray-scott (weightspace-gray-scott-plugin 0.1.0)"
    gray_scott = registry.get("systems", "gray-scott")
    check_system(gray_scott, overrides=TINY_SYSTEM, seed=2)
    check_system(gray_scott)  # the quick profile as shipped
    cnn = registry.get("architectures", "residual-cnn")
    assert cnn.data_overrides((2, 8, 8)) == {"in_channels": 2, "out_channels": 2, "grid_size": (8, 8)}
    for seed, overrides in enumerate([{}, {"hidden": 3, "kernel_size": 1}, {"in_channels": 1, "out_channels": 1}]):
        check_architecture(registry.architecture("residual-cnn", overrides), seed=seed)


def test_example_runs_through_simulate_zoo_train_and_evaluate(on_path, tmp_path, capsys):
    system_set = [f"--set={key}={value}" for key, value in TINY_SYSTEM.items()]
    assert main(["simulate", "gray-scott", "--out", str(tmp_path / "data"), *system_set]) == 0
    data = load_dataset(tmp_path / "data" / "gray-scott-quick.h5")
    assert data["train"].trajectories.shape == (6, 6, 2, 8, 8) and data.attrs["channel_names"] == ["u", "v"]

    zoo = tmp_path / "zoo"
    zoo_set = [f"--set=system.{key}={value}" for key, value in TINY_SYSTEM.items()]
    zoo_set += ["--set=arch.hidden=4", "--set=zoo.base_steps=20", "--set=zoo.expert_steps=10", "--set=zoo.eval_every=5"]
    argv = ["zoo", "build", "--system", "gray-scott", "--arch", "residual-cnn", "--size", "2", "--out", str(zoo)]
    assert main([*argv, *zoo_set, "--set=zoo.max_loss=100"]) == 0
    manifest = json.loads((zoo / "manifest.json").read_text())
    assert manifest["architecture_config"]["in_channels"] == 2 and manifest["architecture_config"]["grid_size"] == [
        8,
        8,
    ]
    assert manifest["complete"] and len(manifest["environments"]) == 2

    run = tmp_path / "run"
    assert main(["train", "--config", str(EXAMPLE / "tiny.toml"), "--out", str(run)]) == 0
    results = tmp_path / "results.json"
    methods = ["--method", "dynadiff", "--method", "one-for-all"]
    argv = ["evaluate", "--run", str(run), *methods, "--frames", "3", "--candidates", "2", "--out", str(results)]
    assert main(argv) == 0
    rows = json.loads(results.read_text())
    assert {(r["method"], r["split"]) for r in rows} == {
        (m, s) for m in ("dynadiff", "one-for-all") for s in ("test_in", "val_out", "test_out")
    }
    assert all(r["system"] == "gray-scott" and math.isfinite(r["rmse_mean"]) for r in rows)
    capsys.readouterr()
