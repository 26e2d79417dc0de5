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


def test_expert_training_times_pointwise_convolutions_against_stock_and_restores_them():
    script = _script("expert_training")
    row = script.measure_pointwise(1, steps=1)
    assert row["matmul_s"] > 0 and row["stock_s"] > 0 and json.dumps(row)
    assert script.PointwiseConv1d.forward is script.MATMUL_FORWARD


def test_profile_change_pairs_before_and_after_per_environment():
    def results(rmse_by_seed):
        rows = [
            {
                "system": "s",
                "architecture": "a",
                "method": "m",
                "split": "val_out",
                "sweep": None,
                "seed": seed,
                "rmse_mean": sum(rmse) / len(rmse),
                "per_env": [{"env_index": i, "rmse": r} for i, r in enumerate(rmse)],
            }
            for seed, rmse in rmse_by_seed.items()
        ]
        return {"rows": rows}

    before = results({s: [1.0, 2.0, 3.0, 4.0] for s in range(3)})
    after = results({s: [0.5, 1.5, 2.5, 3.5] for s in range(3)})
    (c,) = _script("profile_change").profile_change(before, after)
    assert (c["rmse_before"], c["rmse_after"], c["mean_diff"], c["wins"], c["verdict"]) == (2.5, 2.0, 0.5, 4, "better")
    (same,) = _script("profile_change").profile_change(before, before)
    assert same["mean_diff"] == 0.0 and same["verdict"] == "tie"


def test_one_per_env_cost_trains_every_split_at_once_to_the_same_experts(tmp_path):
    changes = {
        "system_settings": {"n_b": 2, "n_d": 2, "n_seen": 2, "n_train": 3, "n_test": 1, "n_frames": 11},
        "architecture_config": {"hidden_width": 8},
        "zoo": {"size": 2, "base_steps": 10, "expert_steps": 5, "eval_every": 5, "max_loss": 100.0},
    }
    config = REPO / "configs" / "lotka-volterra-quick.toml"
    row = _script("one_per_env_cost").ceiling_costs(config, tmp_path, changes)
    assert set(row["environments"]) == {"test_in", "val_out", "test_out"}
    assert all(n > 0 for n in row["environments"].values())
    assert row["max_abs_param_difference"] < 1e-4
    assert len(row["ceiling_at_cap"]) == 3 and row["seconds_all_splits"] > 0
