"""Install the documented example plugin from a temporary directory, as a user would, and use it."""

import json
from pathlib import Path

import pytest

from weightspace.registry import Registry
from weightspace.testing import check_architecture

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
