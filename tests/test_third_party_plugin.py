"""Install the documented example plugin from a temporary directory, as a user would, and use it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from weightspace.registry import Registry
from weightspace.testing import check_architecture

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "toy-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install`` the example into a private target directory (nothing else is touched)."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(EXAMPLE, source)
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    return target


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
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-m", "weightspace.cli", "plugins", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "toy-cnn" in json.loads(out)["architectures"]
    report = subprocess.run(
        [sys.executable, "-m", "weightspace.cli", "inspect", "toy-cnn", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(report)["roundtrip_max_abs_error"] == 0.0
