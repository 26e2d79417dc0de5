"""Install the documented example plugin from a temporary directory, as a user would, and use it."""

import json
from pathlib import Path

import pytest
import torch

from weightspace.evaluate.evaluation import split_environments
from weightspace.method import EvaluationOptions
from weightspace.registry import Registry
from weightspace.testing import check_architecture
from weightspace.zoo import build_zoo, plan_zoo
from weightspace_meta.methods import Coda, Geps

from .conftest import cli_with, install_example


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    return install_example("toy-plugin", tmp_path_factory)


def test_installed_plugin_is_discovered_through_its_entry_point(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    registry = Registry()
    assert "toy-cnn" in registry.names("architectures")
    assert registry.entries("architectures")["toy-cnn"].source == "toy (weightspace-toy-plugin 0.1.0)"
    assert {"fno", "uno", "wno", "mlp-node"} <= set(registry.names("architectures"))
    adapter = registry.architecture("toy-cnn", {"hidden": "4"})
    check_architecture(adapter, seed=3)  # the contract checks third-party authors get for free
    assert [g.name for g in adapter.spec.groups] == ["conv0", "conv1"]


def test_installed_plugin_shows_in_the_cli(installed):
    listed = cli_with(installed, "plugins", "--json")
    assert listed.returncode == 0 and "toy-cnn" in json.loads(listed.stdout)["architectures"]
    report = cli_with(installed, "inspect", "toy-cnn", "--json")
    assert report.returncode == 0 and json.loads(report.stdout)["roundtrip_max_abs_error"] == 0.0


def test_the_meta_learning_rivals_adapt_a_third_party_architecture(installed, tmp_path_factory, monkeypatch):
    """CoDA and GEPS read only the adapter's parameters and batched rollout: no per-architecture code."""
    monkeypatch.syspath_prepend(str(installed))
    registry = Registry()  # not the process-wide one: it may have been loaded before the plugin was on the path
    plan = plan_zoo(
        registry,
        "lambda-omega",
        "toy-cnn",
        "quick",
        system_overrides={"n_beta": 5, "n_seen": 2, "n_train": 2, "n_test": 1, "n_frames": 8, "resolution": 16},
        architecture_overrides={"hidden": 4, "channels": 2},
        zoo_overrides={"size": 1, "base_steps": 10, "expert_steps": 2, "eval_every": 5, "max_loss": 100.0},
    )
    toy = build_zoo(plan, tmp_path_factory.mktemp("toy-zoo"), registry=registry)
    environments = split_environments(toy, "test_out")
    for method in (Coda(), Geps(context_dim=2)):
        (adapted,) = method.adapt_splits(toy, None, [environments], EvaluationOptions(finetune_steps=3))
        base = toy.base()
        assert {k: v.shape[1:] for k, v in adapted.params.items()} == {k: v.shape[1:] for k, v in base.items()}
        assert all(torch.isfinite(v).all() for v in adapted.params.values())
