"""The staged run: train (cached, resumable), generate an expert, evaluate dynadiff; experts export cleanly."""

import json
import math
from pathlib import Path

import pytest
import torch
from neuralop.models import FNO

import weightspace as ws
from weightspace.cli import main
from weightspace.data.simulation import observed_frames
from weightspace.data.trajectories import by_environment
from weightspace.errors import ConfigError
from weightspace.pipeline import Run, RunConfig, plan_run
from weightspace.pipeline.generation import load_expert, save_expert, validation_rmse
from weightspace.storage import load_tensors, save_tensors

from .conftest import TINY_RUN


def test_train_generate_evaluate(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(TINY_RUN)
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    stages = json.loads((out / "run.json").read_text())["stages"]
    stamps = {k: (out / v / "stage.json").stat().st_mtime_ns for k, v in stages.items() if k != "zoo"}
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0  # cached: nothing retrained
    assert stamps == {k: (out / v / "stage.json").stat().st_mtime_ns for k, v in stages.items() if k != "zoo"}
    held_out = json.loads((out / stages["encoder"] / "stage.json").read_text())["held_out"]
    assert held_out["permuted_10pct_function_change"] < 1e-6 < held_out["function_error"]
    assert held_out["nearest_training_function_error"] > 0

    # spelling out a default changes nothing: stage keys hash the resolved configs
    config.write_text(TINY_RUN.replace("[encoder]\n", '[encoder]\nname = "graph-vae"\nbeta = 1e-4\n'))
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    assert json.loads((out / "run.json").read_text())["stages"] == stages

    # another generator setting reuses the zoo and the encoder
    config.write_text(TINY_RUN.replace("sample_steps = 5", "sample_steps = 4"))
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    again = json.loads((out / "run.json").read_text())["stages"]
    assert again["zoo"] == stages["zoo"] and again["encoder"] == stages["encoder"]
    assert again["generator"] != stages["generator"]

    # a stage seed, for a seed study of one stage over the stages before it: the run's seed spelled
    # out trains the same stage, another seed another one
    def stage_weights(stage: str, seed: int | None) -> dict[str, torch.Tensor]:
        section = f"[{stage}_training]\n"
        config.write_text(TINY_RUN.replace(section, section + ("" if seed is None else f"seed = {seed}\n")))
        assert main(["train", "--config", str(config), "--out", str(out)]) == 0
        seeded = json.loads((out / "run.json").read_text())["stages"]
        before = ("zoo",) if stage == "encoder" else ("zoo", "encoder")
        assert all(seeded[b] == stages[b] for b in before)
        return load_tensors(out / seeded[stage] / stage / "weights.safetensors")[0]

    for stage in ("encoder", "generator"):
        unseeded = stage_weights(stage, None)
        assert all(torch.equal(unseeded[k], v) for k, v in stage_weights(stage, 1).items())
        assert not all(torch.equal(unseeded[k], v) for k, v in stage_weights(stage, 7).items())
    capsys.readouterr()

    expert = tmp_path / "expert"
    assert main(["generate", "--run", str(out), "--env", "3", "--length", "3", "--n", "4", "--out", str(expert)]) == 0
    assert "best of 4 candidates" in " ".join(capsys.readouterr().out.split())
    module = load_expert(expert)
    saved, state = load_tensors(expert / "expert.safetensors")[0], module.state_dict()
    assert saved.keys() == state.keys() and all(torch.equal(state[k], v) for k, v in saved.items())
    assert module(torch.ones(5, 2)).shape == (5, 2)

    frames = tmp_path / "frames.safetensors"
    save_tensors(frames, {"frames": 1 + torch.rand(3, 2)})  # frames a user observed: [L, *state]
    assert main(["generate", "--run", str(out), "--frames", str(frames), "--out", str(tmp_path / "from-file")]) == 0
    assert json.loads((tmp_path / "from-file" / "config.json").read_text())["frames"] == 3
    save_tensors(frames, {"frames": torch.rand(3, 5)})
    assert main(["generate", "--run", str(out), "--frames", str(frames), "--out", str(tmp_path / "bad")]) == 2
    assert "observed frames must be [E, L, 2] for lotka-volterra; got [1, 3, 5]" in capsys.readouterr().err

    results = tmp_path / "results.json"
    argv = ["evaluate", "--run", str(out), "--method", "dynadiff", "--method", "finetune-L", "--out", str(results)]
    capsys.readouterr()
    assert main([*argv, "--frames", "3", "--candidates", "2", "--finetune-budgets", "2", "4"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "finetune-L reaches dynadiff's out RMSE" in printed and "its generation latency" in printed
    rows = json.loads(results.read_text())
    (curve,) = [r["budget_curve"] for r in rows if r["method"] == "finetune-L" and r["split"] == "test_out"]
    assert [c["steps"] for c in curve] == [2, 4]
    dyn = [r for r in rows if r["method"] == "dynadiff"]
    assert {r["split"] for r in dyn} == {"test_in", "val_out", "test_out"}
    assert all(r["gen_latency_ms"] > 0 and r["peak_rss_mb"] > 0 and r["rmse_mean"] > 0 for r in dyn)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_stages_train_on_the_device_with_the_cpu_runs_draws(tmp_path):
    """``--device cuda`` trains every stage there (not only the zoo); the draws come from CPU
    generators, so the run follows the CPU run up to floating-point differences, and what is saved
    loads on a CPU."""
    config = tmp_path / "run.toml"
    config.write_text(TINY_RUN)
    runs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        assert main(["train", "--config", str(config), "--out", str(out), "--device", device]) == 0
        runs[device] = out
        stages = json.loads((out / "run.json").read_text())["stages"]
        for stage in ("encoder", "generator"):
            history = json.loads((out / stages[stage] / "stage.json").read_text())["history"]
            runs[device, stage] = history[-1]
    for stage, key in (("encoder", "loss"), ("generator", "diffusion")):
        cpu, cuda = runs["cpu", stage][key], runs["cuda", stage][key]
        assert abs(cpu - cuda) <= 0.05 * abs(cpu) + 1e-4, (stage, cpu, cuda)
    run = Run.load(runs["cuda"])
    assert run.generator.device.type == "cpu" and run.codec.encoder.device.type == "cpu"


def test_run_config_errors(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('system = "lotka-volterra"\narchitecture = "mlp-node"\n[encodr]\nwidth = 3\n')
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "unknown section(s) encodr" in capsys.readouterr().err
    config.write_text('architecture = "mlp-node"\n[system]\nn_seen = 3\n')
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "its settings go in [system_settings]" in capsys.readouterr().err
    config.write_text("system = [")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["generate", "--run", str(tmp_path), "--env", "0", "--out", str(tmp_path / "e")]) == 2
    assert "no run.json" in capsys.readouterr().err


def test_saved_fno_expert_loads_into_a_plain_neuraloperator_fno(tmp_path):
    adapter = ws.architecture("fno", hidden_channels=4, n_layers=2, n_modes=(4, 4), grid_size=(16, 16))
    params = adapter.init_params(1, seed=3)
    save_expert(adapter, {k: v[0] for k, v in params.items()}, tmp_path, {"note": "test"})
    c = adapter.config
    plain = FNO(
        n_modes=c.n_modes,
        in_channels=c.in_channels,
        out_channels=c.out_channels,
        hidden_channels=c.hidden_channels,
        n_layers=c.n_layers,
        lifting_channel_ratio=c.lifting_channel_ratio,
        projection_channel_ratio=c.projection_channel_ratio,
        channel_mlp_expansion=c.channel_mlp_expansion,
    )  # the stock FNO, with neuraloperator's own SpectralConv
    state = ws.storage.load_tensors(tmp_path / "expert.safetensors")[0]
    missing, unexpected = plain.load_state_dict(state, strict=False)
    assert not unexpected and all("_metadata" in k for k in missing)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), adapter.functional(params, x)[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(load_expert(tmp_path)(x), plain(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_run_configs_resolve(path, tmp_path, monkeypatch):
    """Every example config names registered plugins and valid settings (a typo fails here, not an hour
    into a run). Run where no imported data exists: a config over imported data (system ``gridded``)
    must then say how to write it, after its encoder, generator and prompter sections resolved."""
    monkeypatch.chdir(tmp_path)
    config = RunConfig.from_toml(path)
    if config.system == "gridded":
        with pytest.raises(ConfigError, match="weightspace import gridded"):
            plan_run(config)
        return
    plan = plan_run(config)
    assert set(plan.keys) == {"zoo", "encoder", "generator"}


def test_a_validated_generator_keeps_the_step_that_rolled_out_best_on_validation_environments(tmp_path, capsys):
    """Issue 27: with validate_every the generator stage scores its EMA weights on val_out (never
    test_out), records every score and keeps the best one's weights."""
    config = tmp_path / "validated.toml"
    config.write_text(TINY_RUN.replace("max_frames = 4\n", "max_frames = 4\nvalidate_every = 5\nval_candidates = 2\n"))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    run = Run.load(tmp_path / "run")
    stage = run.summary("generator")
    assert [v["step"] for v in stage["validation"]] == [5, 10, 15, 20]
    best = min(stage["validation"], key=lambda v: v["val_rmse"])
    assert stage["kept_step"] == best["step"] and math.isfinite(best["val_rmse"])
    assert f"kept step {best['step']} (val_out RMSE" in capsys.readouterr().out
    # the kept score is what the saved generator gives on the validation environments
    val = run.zoo.dataset()["val_out"]
    env_index, env_params, trajectories = by_environment(val)
    observed = observed_frames(run.zoo.system(), env_index, 4, run.zoo.manifest["seed"])
    score = validation_rmse(
        run.codec, observed, run.env_scale.normalize(env_params), trajectories, run.zoo.scale, run.zoo.dt, 2, 1
    )
    assert score(run.generator, run.prompter) == pytest.approx(best["val_rmse"], rel=1e-5)
