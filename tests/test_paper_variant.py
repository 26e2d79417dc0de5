"""``dynadiff-paper`` beside the tuned ``dynadiff``: its run configs change only what the paper does
differently, a matrix's method entry sets its own evaluation options (candidates, L), and the
paper's settings train and evaluate end to end on a tiny run."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from weightspace.bench import LocalExecutor, plan_bench, run_bench
from weightspace.bench.matrix import Matrix
from weightspace.bench.runner import _evaluation_spec
from weightspace.errors import ConfigError
from weightspace.evaluate.adaptation import observed_frames
from weightspace.pipeline.config import merge_config, read_config_toml
from weightspace.registry import default_registry

from .conftest import TINY_RUN

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = ("lotka-volterra", "lambda-omega")
PAPER = {
    ("encoder", "function_weight"): 1.0,
    ("generator", "prediction"): "epsilon",
    ("generator", "sample_steps"): 50,
    ("generator", "mean_head"): 0,
    ("prompter", "spectrum"): "modes",
    ("generator_training", "max_frames"): 10,
    # validated as evaluated (the matrix's [methods.dynadiff-paper]: L = 10, one sample)
    ("generator_training", "val_observed_frames"): 10,
    ("generator_training", "val_candidates"): 1,
}
"""The paper's choice for every setting a ``*-dynadiff-paper.toml`` may change."""
KEPT = {
    system: {
        ("generator", "hidden"): 64,
        ("generator", "depth"): 3,
        ("generator_training", "steps"): steps,
        ("generator_training", "validate_every"): every,
    }
    for system, steps, every in (("lotka-volterra", 8000, 500), ("lambda-omega", 3000, 300))
}
"""Sizes and budgets (not the paper's: its are the paper profile's) that a paper config may pin where
the tuned config's were chosen together with a setting the paper has not (the smaller DiT both
systems chose with the mean head): the ones the paper variant was measured with."""

MATRIX = """
observed_frames = 3
candidates = 2

[systems.lotka-volterra]
config = "tiny.toml"

[methods.dynadiff]

[methods.one-sample]
candidates = 1
observed_frames = 2

[methods.dynadiff-paper]
config = "tiny-dynadiff-paper.toml"
candidates = 1
observed_frames = 10

[ablations.no-function-loss]
set = { encoder = { function_weight = 0.0 } }

[ablations.short]
set = { encoder = { function_weight = 0.0 } }
observed_frames = 1
"""


def _paper_changes() -> dict:
    """The sections both systems' ``*-dynadiff-paper.toml`` set (without ``extends`` and the pinned
    sizes and budgets, which the tiny run keeps its own of), merged."""
    changes: dict = {}
    for system in SYSTEMS:
        own = tomllib.loads((REPO / "configs" / f"{system}-dynadiff-paper.toml").read_text())
        sections = {k: v for k, v in own.items() if isinstance(v, dict)}
        sections = {
            k: {n: v for n, v in section.items() if (k, n) not in KEPT[system]} for k, section in sections.items()
        }
        changes = merge_config(changes, sections)
    return changes


@pytest.mark.parametrize("system", SYSTEMS)
def test_paper_configs_change_only_what_the_paper_does_differently(system):
    paper = read_config_toml(REPO / "configs" / f"{system}-dynadiff-paper.toml")
    quick = read_config_toml(REPO / "configs" / f"{system}-quick.toml")
    assert paper.pop("method") == "dynadiff-paper"

    def settings(config: dict) -> dict:
        flat = {(k, None): v for k, v in config.items() if not isinstance(v, dict)}
        return flat | {
            (k, key): v for k, section in config.items() if isinstance(section, dict) for key, v in section.items()
        }

    paper, quick = settings(paper), settings(quick)
    changed = {key for key in paper.keys() | quick.keys() if paper.get(key) != quick.get(key)}
    assert changed and changed <= set(PAPER) | set(KEPT[system])
    assert {key: paper[key] for key in changed} == {key: (PAPER | KEPT[system])[key] for key in changed}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The tiny matrix run once: the tuned tiny run, the same run with one sample at L = 2, and the
    tiny run with the paper's settings (one sample, L = 10)."""
    folder = tmp_path_factory.mktemp("paper")
    (folder / "tiny.toml").write_text(TINY_RUN)
    lines = ['extends = "tiny.toml"', 'method = "dynadiff-paper"']
    for section, settings in _paper_changes().items():  # JSON's strings and numbers are TOML's
        lines += [f"[{section}]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]
    (folder / "tiny-dynadiff-paper.toml").write_text("\n".join(lines) + "\n")
    (folder / "matrix.toml").write_text(MATRIX)
    matrix = Matrix.from_toml(folder / "matrix.toml")
    outcome = run_bench(matrix, folder / "bench", LocalExecutor())
    return matrix, outcome, folder / "bench"


def test_a_method_entry_sets_its_own_candidates_and_observed_frames(bench):
    matrix, _, _ = bench
    cells = {c.method: c for c in matrix.expand()}
    expected = {"dynadiff": (3, 2), "one-sample": (2, 1), "dynadiff-paper": (10, 1)}
    expected |= {"no-function-loss": (3, 2), "short": (1, 2)}  # ablations: the first method's, or their own
    for method, (frames, candidates) in expected.items():
        spec = _evaluation_spec(cells[method], matrix)
        assert spec["options"] == {"observed_frames": frames, "candidates": candidates}, method


def test_the_evaluated_rows_record_one_candidate(bench):
    matrix, outcome, out = bench
    assert outcome.failed == {}
    plan = outcome.plan
    for cell in plan.cells:
        if cell.group != "method":
            continue
        rows = json.loads((out / "cells" / f"{plan.evaluation[cell.id]}.json").read_text())
        assert {r["method"] for r in rows} == {cell.method}
        assert {r["candidates"] for r in rows} == {2 if cell.method == "dynadiff" else 1}
        assert {r["observed_frames"] for r in rows} == {cell.observed_frames}
        assert all(math.isfinite(r["rmse_mean"]) for r in rows)


def test_the_paper_variant_trains_with_the_papers_settings(bench):
    matrix, outcome, _ = bench
    (cell,) = [c for c in outcome.plan.cells if c.method == "dynadiff-paper"]
    config = cell.run_config().sections
    assert config["generator"]["prediction"] == "epsilon" and config["generator"]["sample_steps"] == 50
    assert config["generator"]["mean_head"] == 0 and config["encoder"]["function_weight"] == 1.0
    assert config["generator_training"]["max_frames"] == 10
    tuned = next(c for c in outcome.plan.cells if c.method == "dynadiff")
    runs = outcome.plan.runs
    assert runs[cell.id].stage_key("zoo") == runs[tuned.id].stage_key("zoo")  # one zoo for both
    assert runs[cell.id].stage_key("generator") != runs[tuned.id].stage_key("generator")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("[methods.a]\ncandidates = 0\n", "[methods].a: candidates must be a positive integer, got 0"),
        ('[methods.a]\ncandidates = "1"\n', "[methods].a: candidates must be a positive integer, got '1'"),
        ("[methods.a]\nobserved_frames = true\n", "observed_frames must be a positive integer, got True"),
        ("[methods.a]\nobserved_frames = 2.0\n", "observed_frames must be a positive integer, got 2.0"),
        ("[methods.a]\n[ablations.b]\ncandidates = -1\n", "[ablations].b: candidates must be a positive integer"),
        ("[methods.a]\nframes = 2\n", "unknown key(s) frames; keys: config, set, evaluate, settings, candidates"),
    ],
)
def test_bad_evaluation_options_of_an_entry_are_one_line_errors(tmp_path, entry, message):
    (tmp_path / "tiny.toml").write_text(TINY_RUN)
    (tmp_path / "bad.toml").write_text(f'[systems.lv]\nconfig = "tiny.toml"\n{entry}')
    with pytest.raises(ConfigError) as caught:
        Matrix.from_toml(tmp_path / "bad.toml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_observation_longer_than_the_trajectory_is_refused_where_frames_are_taken(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_RUN)  # 11 frames
    text = '[systems.lv]\nconfig = "tiny.toml"\n[methods.dynadiff]\n[methods.long]\nobserved_frames = 12\n'
    (tmp_path / "matrix.toml").write_text(text)
    plan = plan_bench(Matrix.from_toml(tmp_path / "matrix.toml"))
    assert {c.method: c.observed_frames for c in plan.cells} == {"dynadiff": 4, "long": 12}
    system = default_registry().get("systems", "lotka-volterra")("quick", {"n_frames": 11})
    with pytest.raises(ConfigError, match="12 observed frames requested; a lotka-volterra trajectory has 11"):
        observed_frames(system, torch.tensor([0]), 12, seed=0)
