"""A third party's adaptation method (docs/examples/method-plugin), installed from a temporary
directory as a user would, is listed, evaluated and benched like the built-in methods."""

import json
from pathlib import Path

import pytest

from weightspace.registry import Registry

from .conftest import TINY_RUN, cli_with, install_example

MATRIX = """
seeds = [0]
observed_frames = 3
baselines = ["nearest-zoo", "zoo-soup", "one-per-env"]

[systems.lotka-volterra]
config = "tiny.toml"

[methods.dynadiff]
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    return install_example("method-plugin", tmp_path_factory)


def test_the_method_registers_through_its_entry_point(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    registry = Registry()
    assert registry.entries("methods")["zoo-soup"].source == "soup (weightspace-soup-method 0.1.0)"
    method = registry.get("methods", "zoo-soup")
    assert not method.needs_run and not method.reference and method.options == ("observed_frames",)
    listed = json.loads(cli_with(installed, "plugins", "--json").stdout)
    assert "zoo-soup" in listed["methods"] and "nearest-zoo" in listed["methods"]


def test_the_method_is_evaluated_and_benched_beside_the_built_in_ones(installed, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_RUN)
    (tmp_path / "matrix.toml").write_text(MATRIX)
    bench = cli_with(installed, "bench", str(tmp_path / "matrix.toml"), "--out", str(tmp_path / "bench"))
    assert bench.returncode == 0, bench.stderr
    results = json.loads((tmp_path / "bench" / "results.json").read_text())
    rows = {(r["method"], r["split"]): r for r in results["rows"]}
    for split in ("test_in", "val_out", "test_out"):
        soup, nearest = rows["zoo-soup", split], rows["nearest-zoo", split]
        assert soup["soup_size"] == 3 and soup["observed_frames"] == 3 and soup["group"] == "baseline"
        assert soup["n_envs"] == nearest["n_envs"] and soup["rmse_mean"] != nearest["rmse_mean"]
        assert not soup["reference"] and rows["one-per-env", split]["reference"]
    report = (tmp_path / "bench" / "report.md").read_text()
    assert "| zoo-soup |" in report and "out ÷ one-per-env" in report
    # the same method through `evaluate`, on the zoo the bench built
    (zoo,) = (tmp_path / "bench" / "cache").glob("zoo-*")
    out = tmp_path / "rows.json"
    evaluated = cli_with(
        installed, "evaluate", "--zoo", str(zoo), "--method", "zoo-soup", "--frames", "3", "--out", str(out)
    )
    assert evaluated.returncode == 0, evaluated.stderr
    again = {r["split"]: r["rmse_mean"] for r in json.loads(out.read_text())}
    assert again == {split: rows["zoo-soup", split]["rmse_mean"] for split in ("test_in", "val_out", "test_out")}
    unknown = cli_with(installed, "evaluate", "--zoo", str(zoo), "--method", "zoo-stew", "--out", str(out))
    assert unknown.returncode == 2 and "zoo-soup" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1
