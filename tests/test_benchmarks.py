"""The benchmark scripts keep working as the library changes (tiny settings; the timings are not checked)."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pipeline_cost_times_every_stage_and_resumes_without_rebuilding(tmp_path):
    cost = _script("pipeline_cost")
    changes = {
        "system_settings": {"n_b": 2, "n_d": 2, "n_seen": 2, "n_train": 3, "n_test": 1, "n_frames": 11},
        "architecture_config": {"hidden_width": 8},
        "zoo": {"size": 2, "base_steps": 10, "expert_steps": 5, "eval_every": 5, "max_loss": 100.0},
        "encoder": {"width": 16, "heads": 2, "depth": 1},
        "encoder_training": {"steps": 3},
        "generator": {"hidden": 16, "heads": 2, "depth": 1},
        "generator_training": {"steps": 3, "max_frames": 4},
    }
    config = REPO / "configs" / "lotka-volterra-quick.toml"
    first = cost.stage_costs(config, changes, tmp_path, profile_steps=2)
    stages = [
        "simulate",
        "zoo",
        "encoder",
        "generator",
        *(f"evaluate {m}" for m in ("one-for-all", "one-per-env", "finetune-L", "nearest-zoo")),
    ]
    assert set(stages) <= set(first["seconds"]) and "evaluate dynadiff" in first["seconds"]
    assert all(first["profile"][stage] for stage in ("encoder", "generator"))
    again = cost.stage_costs(config, changes, tmp_path, profile_steps=0)
    assert again["seconds"] == first["seconds"]  # a resumed cache keeps its timings, rebuilds nothing


def test_pipeline_cost_scaling_points_and_slope():
    cost = _script("pipeline_cost")
    point = cost.width_costs("mlp-node", 8, steps=1)
    assert point["tokens"] == 2 * 8 + 2 and point["generator_ms_per_step"] > 0
    assert cost.zoo_size_costs("mlp-node", 4)["zoo_size"] == 4
    assert cost._slope([1, 2, 4], [3, 12, 48]) == pytest.approx(2.0)


def test_generator_step_measures_a_lever():
    row = _script("generator_step").measure(6, 4, hidden=8, depth=1, batch=2, threads=1, steps=1)
    assert row["ms_per_step"] > 0 and json.dumps(row)
