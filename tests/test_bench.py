"""The bench: matrices expand into cells, cells share content-addressed stages, an interrupted or
failing bench keeps what it built, the report is redrawn from results alone, and Ray gives the
local executor's results."""

import json
import math
from concurrent.futures import Future
from pathlib import Path

import pytest

from weightspace.bench import LocalExecutor, Node, execute, plan_bench, run_bench
from weightspace.bench.matrix import Matrix
from weightspace.bench.report import finetune_reach, load_results, write_report, write_results
from weightspace.cli import main
from weightspace.errors import WeightspaceError
from weightspace.progress import BenchProgress

from .conftest import TINY_RUN

REPO = Path(__file__).resolve().parents[1]

FLAT_VAE = 'extends = "tiny.toml"\n\n[encoder]\nname = "flat-vae"\nwidth = 16\nlatent_dim = 4\nheads = 2\ndepth = 1\n'
TINY_MATRIX = """
seeds = [0, 1]
observed_frames = 3
candidates = 2
finetune_steps = 5
finetune_budgets = [2, 5]
baselines = ["one-for-all", "one-per-env", "finetune-L", "nearest-zoo"]

[systems.lotka-volterra]
config = "tiny.toml"

[methods.dynadiff]

[methods.flat-vae]
config = "{system}-flat-vae.toml"

[ablations.no-function-loss]
set = { encoder = { function_weight = 0.0 } }

[sweeps]
observed_frames = [1, 3]
zoo_size = [2]
"""


@pytest.fixture
def matrix_file(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_RUN)
    (tmp_path / "lotka-volterra-flat-vae.toml").write_text(FLAT_VAE)
    (tmp_path / "matrix.toml").write_text(TINY_MATRIX)
    return tmp_path / "matrix.toml"


def test_matrix_expands_into_cells_that_share_stages(matrix_file):
    matrix = Matrix.from_toml(matrix_file)
    cells = matrix.expand()
    # per seed: 2 methods, the baselines, 1 ablation, 2 observation lengths, 1 zoo size
    assert len(cells) == 2 * 7
    by_id = {c.id: c for c in cells}
    ablation = by_id["lotka-volterra/mlp-node/no-function-loss/seed0"]
    assert ablation.config["encoder"]["function_weight"] == 0.0 and ablation.config["encoder"]["width"] == 16
    assert by_id["lotka-volterra/mlp-node/flat-vae/seed1"].config["encoder"]["name"] == "flat-vae"
    assert by_id["lotka-volterra/mlp-node/dynadiff/zoo_size=2/seed0"].config["zoo"]["size"] == 2
    assert by_id["lotka-volterra/mlp-node/dynadiff/observed_frames=1/seed0"].observed_frames == 1
    plan = plan_bench(matrix)
    kinds = [key.split("-")[0] for key in plan.nodes]
    # per seed: two zoos (sizes 3 and 2); encoders: graph-vae, flat-vae, no-function-loss, the size-2 zoo's
    assert kinds.count("zoo") == 2 * 2 and kinds.count("encoder") == 2 * 4 and kinds.count("generator") == 2 * 4
    # observed_frames = 3 is the main cell's own evaluation: evaluated once
    main_cell, same = (
        "lotka-volterra/mlp-node/dynadiff/seed0",
        "lotka-volterra/mlp-node/dynadiff/observed_frames=3/seed0",
    )
    assert plan.evaluation[main_cell] == plan.evaluation[same]
    assert kinds.count("evaluate") == 2 * 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds = [0]\n[methods.dynadiff]\n", "names no [systems"),
        ('[systems.lv]\nconfig = "tiny.toml"\n', "names no [methods"),
        ('colour = 1\n[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n', "unknown key(s) colour"),
        ('[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\nevaluate = "x"\n', "evaluate = 'x'"),
        ('baselines = ["oracle"]\n[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n', "unknown baseline 'oracle'"),
        ('[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n[sweeps]\nwidth = [1]\n', "unknown sweep 'width'"),
        ('[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\nset = { seed = 3 }\n', "set cannot change seed"),
        ('[systems.lv]\nconfig = "none.toml"\n[methods.a]\n', "no such run config"),
        ('[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\nset = { encoder = { name = "vae9" } }\n', "vae9"),
        ('seeds = 0\n[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n', "seeds must be a non-empty list of ints"),
        ('[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n[ablations.a]\n', "label(s) a used twice"),
        ('[systems.lv]\nconfig = "tiny.toml"\n[methods.one-per-env]\n', "one-per-env used twice"),
        ('[set]\nsystem = "x"\n[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n', "set cannot change system"),
        ('observed_frames = 0\n[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n', "a positive integer, got 0"),
        ('[systems.lv]\nconfig = "tiny.toml"\narchitectures = "fno"\n[methods.a]\n', "architectures must be a"),
        ('[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n[sweeps]\nzoo_size = 4\n', "zoo_size must be a"),
        ('finetune_budgets = [0]\n[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n', "finetune_budgets must be a"),
        (
            'baselines = ["one-per-env"]\nbaseline_settings = { nearest-zoo = {} }\n'
            '[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n',
            "baseline_settings for 'nearest-zoo', which is not among the baselines",
        ),
        (
            'baselines = ["one-per-env"]\n[systems.lv]\nconfig = "tiny.toml"\n'
            'baseline_settings = { one-per-env = { starts = ["middle"] } }\n[methods.a]\n',
            "[systems.lv]: baseline_settings: one-per-env: starts must be",
        ),
        (
            'baselines = ["one-per-env"]\nbaseline_settings = { one-per-env = { colour = 1 } }\n'
            '[systems.lv]\nconfig = "tiny.toml"\n[methods.a]\n',
            "does not take settings ['colour']",
        ),
        ('[systems.lv]\nconfig = "tiny.toml"\nseed = 1\n[methods.a]\n', "unknown key(s) seed; keys: config"),
    ],
)
def test_bad_matrices_are_named(tmp_path, text, message):
    (tmp_path / "tiny.toml").write_text(TINY_RUN)
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(WeightspaceError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        plan_bench(Matrix.from_toml(tmp_path / "bad.toml"))


def test_baseline_settings_reach_the_baselines_node_with_a_systems_over_the_matrixs(matrix_file):
    text = TINY_MATRIX.replace(
        "[systems.lotka-volterra]",
        'baseline_settings = { one-per-env = { starts = ["scratch"] } }\n[systems.lotka-volterra]',
    )
    matrix_file.write_text(text)
    plan = plan_bench(Matrix.from_toml(matrix_file))
    spec = plan.nodes[plan.evaluation["lotka-volterra/mlp-node/baselines/seed0"]].task["spec"]
    assert spec["settings"] == {"one-per-env": {"starts": ["scratch"]}}
    system_wins = text.replace(
        'config = "tiny.toml"', 'config = "tiny.toml"\nbaseline_settings = { one-per-env = { starts = ["base"] } }', 1
    )
    matrix_file.write_text(system_wins)
    plan = plan_bench(Matrix.from_toml(matrix_file))
    spec = plan.nodes[plan.evaluation["lotka-volterra/mlp-node/baselines/seed0"]].task["spec"]
    assert spec["settings"] == {"one-per-env": {"starts": ["base"]}}
    assert "settings" not in plan.nodes[plan.evaluation["lotka-volterra/mlp-node/dynadiff/seed0"]].task["spec"]


@pytest.mark.parametrize("name", ["quick", "ci", "paper"])
def test_shipped_matrices_plan(name):
    plan = plan_bench(Matrix.from_toml(REPO / "benchmarks" / "matrices" / f"{name}.toml"))
    methods = {c.method for c in plan.cells}
    assert {"dynadiff", "flat-vae", "single-stage", "flow-matching", "no-function-loss", "random-init-zoo"} <= methods
    assert {("lotka-volterra", "mlp-node"), ("lambda-omega", "fno")} <= {(c.system, c.architecture) for c in plan.cells}


def test_the_protocol_matrix_runs_three_seeds_of_the_tuned_and_the_paper_method_against_every_baseline():
    plan = plan_bench(Matrix.from_toml(REPO / "benchmarks" / "matrices" / "protocol.toml"))
    assert {c.seed for c in plan.cells} == {0, 1, 2}
    assert {c.method for c in plan.cells if c.group == "method"} == {"dynadiff", "dynadiff-paper"}
    assert {c.system for c in plan.cells} == {"lotka-volterra"}


def test_the_deviations_matrix_switches_one_paper_setting_back_per_ablation():
    plan = plan_bench(Matrix.from_toml(REPO / "benchmarks" / "matrices" / "deviations.toml"))
    cells = {c.method: c for c in plan.cells if c.seed == 0}
    assert set(cells) == {"dynadiff", "paper-one-sample", "paper-ddim-50", "paper-epsilon", "paper-max-frames-10"}
    generator = {m: plan.runs[c.id].keys["generator"] for m, c in cells.items()}
    assert generator["paper-one-sample"] == generator["dynadiff"]  # an evaluation option: the same generator
    assert cells["paper-one-sample"].candidates == 1 and cells["dynadiff"].candidates == 16
    assert len({generator[m] for m in generator if m != "paper-one-sample"}) == 4
    assert len({plan.runs[c.id].keys["encoder"] for c in cells.values()}) == 1  # the zoo and encoder are shared


def test_finetune_reach_takes_the_smallest_budget_that_gets_there_or_bounds_it():
    curve = [{"steps": 100, "rmse": 0.4, "seconds_per_env": 1.0}, {"steps": 10, "rmse": 0.6, "seconds_per_env": 0.1}]
    assert finetune_reach(curve, 0.5) == {"reached": True, "steps": 100, "ms": 1000.0}
    assert finetune_reach(curve, 0.7) == {"reached": True, "steps": 10, "ms": 100.0}
    assert finetune_reach(curve, 0.3) == {"reached": False, "steps": 100, "ms": 1000.0}


def test_demo_matrix_plans_dynadiff_and_the_baselines_with_budgets():
    matrix = Matrix.from_toml(REPO / "benchmarks" / "matrices" / "demo.toml")
    plan = plan_bench(matrix)
    assert {c.method for c in plan.cells} == {"dynadiff", "baselines"} and matrix.finetune_budgets
    baselines = [c for c in plan.cells if c.method == "baselines"]
    settings = {c.system: plan.nodes[plan.evaluation[c.id]].task["spec"].get("settings") for c in baselines}
    # lambda-omega's ceiling from the base alone (scratch won no validation environment); both starts elsewhere
    assert settings == {"lotka-volterra": None, "lambda-omega": {"one-per-env": {"starts": ["base"]}}}


def _all_finite(rows):
    return all(math.isfinite(r["rmse_mean"]) and r["rmse_mean"] > 0 for r in rows)


def test_bench_runs_resumes_and_redraws_its_report(matrix_file, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", str(matrix_file), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["failed"] == [] and _all_finite(results["rows"])
    summary = results["summary"]
    assert {r["n_seeds"] for r in summary} == {2}
    ope = [r for r in summary if r["method"] == "one-per-env"]
    assert all(r["ratio_to_reference"] == pytest.approx(1.0) and r["reference_method"] == "one-per-env" for r in ope)
    report = (out / "report.md").read_text()
    for heading in ("## Methods", "## Ablations", "## Observation length", "## Zoo size", "## Generation vs."):
        assert heading in report
    assert "**" in report  # the best of a column is bold
    # two seeds: paired comparisons are drawn, but none gives a verdict
    comparisons = results["comparisons"]
    assert comparisons and {c["verdict"] for c in comparisons} == {"not enough seeds (n < 3): no verdict"}
    assert {c["n_seeds"] for c in comparisons} == {2} and "no-function-loss" in {c["method"] for c in comparisons}
    section = report.split("## Paired comparisons", 1)[1].split("\n## ", 1)[0]
    assert "not enough seeds (n < 3): no verdict |" in section
    assert "| better |" not in section and "| worse |" not in section
    for png in ("step-errors-lotka-volterra-mlp-node", "environment-map-lotka-volterra-mlp-node", "rmse-vs-zoo-size"):
        assert (out / f"{png}.png").stat().st_size > 1000
    # finetune-L's budget curve (averaged over seeds) says how long it takes to reach dynadiff's RMSE
    (curve,) = [r["budget_curve"] for r in summary if r["method"] == "finetune-L" and r["split"] == "test_out"]
    assert [c["steps"] for c in curve] == [2, 5] and all(c["seconds_per_env"] > 0 for c in curve)
    assert (
        "fine-tuning to reach generation's RMSE" in report and "(finetune-L)" in report and "not measured" not in report
    )
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header.startswith("system,architecture,method,group,sweep,sweep_value,split,n_seeds,rmse_mean")
    assert (out / "runs/lotka-volterra/mlp-node/flat-vae/seed1/run.json").is_file()

    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    capsys.readouterr()
    assert main(["bench", str(matrix_file), "--out", str(out)]) == 0  # everything cached
    assert "(0 nodes built)" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}

    report = (out / "report.md").read_text()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == report
    assert main(["report", str(tmp_path)]) == 2  # no results.json there


class FailingExecutor(LocalExecutor):
    """Runs nodes in this process, except that every flat-vae encoder fails."""

    def submit(self, node: Node, out: str) -> Future:
        if node.label.startswith("encoder for") and "flat-vae" in node.label:
            future: Future = Future()
            future.set_result({"key": node.key, "error": "RuntimeError: injected"})
            return future
        return super().submit(node, out)


def test_a_failed_node_skips_its_dependents_and_not_the_others(matrix_file, tmp_path):
    out = tmp_path / "bench"
    outcome = run_bench(Matrix.from_toml(matrix_file), out, FailingExecutor())
    failed_labels = sorted(outcome.plan.nodes[k].label.split()[0] for k in outcome.failed)
    assert failed_labels == ["encoder", "encoder", "evaluate", "evaluate", "generator", "generator"]
    assert all("flat-vae" in outcome.plan.nodes[k].label for k in outcome.failed)
    results = write_results(outcome.plan, out, outcome.failed, "matrix.toml")
    assert {r["method"] for r in results["rows"]} >= {"dynadiff", "no-function-loss", "one-per-env"}
    assert "flat-vae" not in {r["method"] for r in results["rows"]}
    write_report(out, load_results(out))
    assert "## Failed" in (out / "report.md").read_text() and "injected" in (out / "report.md").read_text()
    # the rerun builds exactly what failed
    rerun = run_bench(Matrix.from_toml(matrix_file), out, LocalExecutor())
    assert not rerun.failed and sorted(r["key"] for r in rerun.ran) == sorted(outcome.failed)


class NodeEvents(BenchProgress):
    def __init__(self):
        self.events = []

    def stage(self, node, name, total):
        self.events.append(("stage", node.key, name, total))

    def advance(self, node, n):
        self.events.append(("advance", node.key, n))

    def log(self, node, message):
        self.events.append(("log", node.key, message))


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_running_node_reports_its_stages_steps_and_messages(matrix_file, tmp_path, jobs):
    """In this process and from pool workers (through the executor's queue) alike."""
    zoo = next(n for n in plan_bench(Matrix.from_toml(matrix_file)).nodes.values() if n.key.startswith("zoo"))
    events = NodeEvents()
    executor = LocalExecutor(jobs, progress=events)
    try:
        handle = executor.submit(zoo, str(tmp_path))
        executor.wait([handle])
        assert "error" not in executor.result(handle)
    finally:
        executor.close()
    assert {e[1] for e in events.events} == {zoo.key}
    assert any(e[0] == "log" and e[2].startswith("simulating") for e in events.events)
    stages = [e for e in events.events if e[0] == "stage"]
    assert stages[0][2].startswith("base expert") and len(stages) == 2
    assert sum(e[2] for e in events.events if e[0] == "advance") > 0


def test_a_node_that_raises_comes_back_as_an_error_with_its_traceback_logged(matrix_file, tmp_path):
    plan = plan_bench(Matrix.from_toml(matrix_file))
    encoder = next(n for n in plan.nodes.values() if n.key.startswith("encoder"))
    result = execute(encoder, str(tmp_path), threads=1)  # its zoo was never built
    assert "is not built" in result["error"]
    assert "Traceback" in (tmp_path / "logs" / f"{encoder.key}.log").read_text()


def test_ray_executor_gives_the_local_executors_results(matrix_file, tmp_path):
    pytest.importorskip("ray")
    rows = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor
        argv = ["bench", str(matrix_file), "--out", str(out), "--executor", executor, "--jobs", "2"]
        assert main([*argv, "--device", "cpu"]) == 0
        rows[executor] = {
            (r["cell"], r["method"], r["split"]): r["rmse_mean"]
            for r in json.loads((out / "results.json").read_text())["rows"]
        }
    assert rows["local"] == rows["ray"]


@pytest.mark.slow
def test_ci_matrix_gives_a_sane_report(tmp_path):
    """The CI-sized matrix (both quick systems, every main method and the key ablations)."""
    out = tmp_path / "bench"
    assert main(["bench", str(REPO / "benchmarks/matrices/ci.toml"), "--out", str(out), "--jobs", "2"]) == 0
    results = load_results(out)
    assert results["failed"] == [] and _all_finite(results["rows"])
    summary = {(r["system"], r["method"], r["split"]): r for r in results["summary"] if r["sweep"] is None}
    for system in ("lotka-volterra", "lambda-omega"):
        for split in ("test_in", "val_out", "test_out"):
            # the upper bound beats the pooled expert, and nothing blows up (normalized states: 1 ~ predicting 0)
            assert (
                summary[(system, "one-per-env", split)]["rmse_mean"]
                < summary[(system, "one-for-all", split)]["rmse_mean"]
            )
            for method in ("dynadiff", "flat-vae", "single-stage", "flow-matching", "no-function-loss", "coda", "geps"):
                assert summary[(system, method, split)]["rmse_mean"] < 1.5
    report = (out / "report.md").read_text()
    assert "## Ablations" in report and "random-init-zoo" in report and "## Generation vs." in report


def test_the_backbone_matrix_runs_each_operator_through_its_own_zoo_and_generator():
    plan = plan_bench(Matrix.from_toml(REPO / "benchmarks" / "matrices" / "backbones.toml"))
    assert {c.architecture for c in plan.cells} == {"fno", "uno", "wno"} and {c.seed for c in plan.cells} == {0, 1, 2}
    dynadiff = [c for c in plan.cells if c.method == "dynadiff" and c.seed == 0]
    assert len({plan.runs[c.id].keys["zoo"] for c in dynadiff}) == 3
