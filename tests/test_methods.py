"""Every method of the ablation matrix runs through the same train / evaluate commands: variants of
one run config (``extends``) sharing a stage cache, each writing rows under its own method name."""

import json

import pytest

from weightspace.cli import main
from weightspace.pipeline import RunConfig

from .conftest import TINY_RUN

VARIANTS = {
    "flat-vae": '[encoder]\nname = "flat-vae"\nwidth = 16\nlatent_dim = 4\nheads = 2\ndepth = 1\nchunk = 16\n',
    "single-stage": '[encoder]\nname = "identity"\n',
    "flow-matching": '[generator]\nname = "flow-matching"\nhidden = 16\ndepth = 1\nheads = 2\nsample_steps = 3\n',
    "flow-matching-init": '[generator]\nname = "flow-matching"\nhidden = 16\ndepth = 1\nheads = 2\nsource = "init"\n',
    "dynadiff-stats-prompter": '[prompter]\nname = "stats"\n',
    "nearest": '[generator]\nname = "nearest"\n',
    "mlp-diffusion": '[encoder]\nname = "identity"\n\n[generator]\nname = "mlp-diffusion"\nhidden = 32\n'
    'sample_steps = 5\n\n[prompter]\nname = "descriptor"\ndim = 8\nhidden = 8\n',
}


@pytest.fixture(scope="module")
def base_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("configs")
    (folder / "base.toml").write_text(TINY_RUN)
    return folder


def test_extends_merges_sections_and_a_new_component_replaces_its_section(base_config):
    child = base_config / "child.toml"
    child.write_text('extends = "base.toml"\nmethod = "x"\n\n[encoder]\nname = "identity"\n\n[generator]\ndepth = 2\n')
    config = RunConfig.from_toml(child)
    assert config.method == "x" and config.system == "lotka-volterra"
    assert config.sections["encoder"] == {"name": "identity"}  # graph-vae's width etc. are not carried over
    assert config.sections["generator"] == {
        "name": "dit-diffusion",
        "hidden": 16,
        "depth": 2,
        "heads": 2,
        "sample_steps": 5,
    }
    loop = base_config / "loop.toml"
    loop.write_text('extends = "loop.toml"\n')
    assert main(["train", "--config", str(loop), "--out", str(base_config / "never")]) == 2


@pytest.mark.parametrize("method", sorted(VARIANTS))
def test_each_method_trains_and_evaluates_under_its_name(method, base_config, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "shared-cache"
    config = base_config / f"{method}.toml"
    config.write_text(f'extends = "base.toml"\nmethod = "{method}"\n\n{VARIANTS[method]}')
    out = tmp_path_factory.mktemp(method)
    assert main(["train", "--config", str(config), "--out", str(out), "--cache", str(cache)]) == 0
    assert len(list(cache.glob("zoo-*"))) == 1  # every variant shares the one zoo
    results = out / "results.json"
    argv = ["evaluate", "--run", str(out), "--frames", "3", "--candidates", "3", "--out", str(results)]
    assert main(argv) == 0
    rows = json.loads(results.read_text())
    assert [(r["method"], r["split"]) for r in rows] == [(method, s) for s in ("test_in", "val_out", "test_out")]
    for row in rows:
        # one expert per environment of the split, scored on every test trajectory of each
        assert row["n_envs"] == len(row["per_env"]) == 2 and row["n_traj"] == 2
        per_env = [e["rmse"] for e in row["per_env"]]
        assert row["rmse_mean"] == pytest.approx(sum(per_env) / len(per_env), nan_ok=True)
        assert (row["observed_frames"], row["candidates"]) == (3, 3) and row["gen_latency_ms"] > 0
        assert not row["reference"] and set(row["memorization"]) >= {"nn_distance", "ratio", "ratio_other_env"}
    assert main(argv) == 0  # seeded sampling: the same experts, the same scores
    again = json.loads(results.read_text())
    assert [r["rmse_per_step"] for r in again] == [r["rmse_per_step"] for r in rows]
    assert main([*argv[:-2], "--method", "dynadiff", "--out", str(results)]) == (0 if method == "dynadiff" else 2)


def test_diffusion_init_reports_finetuning_curves_from_three_starts(base_config, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "shared-cache"
    config = base_config / "init.toml"
    config.write_text(f'extends = "base.toml"\nmethod = "mlp-diffusion"\n\n{VARIANTS["mlp-diffusion"]}')
    out = tmp_path_factory.mktemp("init")
    assert main(["train", "--config", str(config), "--out", str(out), "--cache", str(cache)]) == 0
    results = out / "results.json"
    argv = ["evaluate", "--run", str(out), "--method", "diffusion-init", "--frames", "3", "--candidates", "2"]
    assert main([*argv, "--finetune-steps", "20", "--out", str(results)]) == 0
    rows = json.loads(results.read_text())
    assert [r["method"] for r in rows] == ["diffusion-init"] * 3 and rows[0]["generator_run"] == "mlp-diffusion"
    curves = rows[-1]["finetune"]  # test_out
    assert curves["steps"] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    assert set(curves["val_loss"]) == {"diffusion", "random", "base"}
    assert all(len(v) == 21 for v in curves["val_loss"].values())
    assert curves["steps_to_target"]["base"] is not None and curves["reached"]["base"] == 1.0
    assert (out / "results-finetune.png").stat().st_size > 0


def test_distill_a_generated_lotka_volterra_expert(base_config, tmp_path_factory, capsys):
    cache = tmp_path_factory.getbasetemp() / "shared-cache"
    out = tmp_path_factory.mktemp("distill")
    assert main(["train", "--config", str(base_config / "base.toml"), "--out", str(out), "--cache", str(cache)]) == 0
    expert, report = out / "expert", out / "equations.json"
    assert main(["generate", "--run", str(out), "--env", "1", "--n", "2", "--out", str(expert)]) == 0
    assert main(["distill", "--expert", str(expert), "--trajectories", "4", "--out", str(report)]) == 0
    result = json.loads(report.read_text())
    assert set(result["equations"]) == {"prey", "predator"} and set(result["environment"]) == {"b", "d"}
    true_terms = {(r["state"], r["term"]) for r in result["terms"] if r["true"] != 0}
    assert true_terms == {
        ("prey", "prey"),
        ("prey", "prey predator"),
        ("predator", "prey predator"),
        ("predator", "predator"),
    }
    assert "dprey/dt" in capsys.readouterr().out
    assert main(["distill", "--expert", str(out / "missing")]) == 2
