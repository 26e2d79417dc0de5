"""Adjoint matching: on a flow whose reward-tilted target is known in closed form, the tuned flow
samples the target; with a flat reward it is the trained flow, and its loss pulls a perturbed flow
back; the ``adjoint-matching`` method on a tiny flow run, its settings through a bench matrix, and
its bad inputs."""

import copy
import json

import pytest
import torch
from torch import nn

from weightspace.bench.matrix import Matrix
from weightspace.bench.runner import plan_bench
from weightspace.cli import main
from weightspace.errors import ConfigError
from weightspace.nn.adjoint_matching import (
    AdjointMatchingConfig,
    adjoint_matching,
    adjoint_matching_loss,
    lean_adjoint,
    sample_memoryless,
)
from weightspace.pipeline.reward_tuning import frame_reward
from weightspace.pipeline.run import Run

from .conftest import TINY_RUN

FLOW = '[generator]\nname = "flow-matching"\nhidden = 16\ndepth = 1\nheads = 2\nsample_steps = 3\n'


class GaussianFlow(nn.Module):
    """The exact straight-path velocity from N(0, 1) to N(0, 1), ``(2t - 1) / ((1 - t)^2 + t^2) x``,
    plus a learnable correction that starts at 0."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.view(-1, 1)
        return (2 * t - 1) / ((1 - t) ** 2 + t**2) * x + self.net(torch.cat([x, t], dim=1))


def _source(n, generator):
    return torch.randn(n, 1, generator=generator)


def _ode_samples(field: nn.Module, n: int = 20000, steps: int = 100) -> torch.Tensor:
    x = _source(n, torch.Generator().manual_seed(5))
    with torch.no_grad():
        for k in range(steps):
            x = x + field(x, torch.full((n,), k / steps)) / steps
    return x[:, 0]


def test_the_tuned_flow_samples_the_reward_tilted_distribution():
    """N(0, 1) tilted by exp(lambda r), r(x) = -(x - a)^2 / 2, is N(lambda a / (1 + lambda), 1 / (1 + lambda))."""
    torch.manual_seed(0)
    base, a, scale = GaussianFlow(), 2.0, 1.0
    config = AdjointMatchingConfig(steps=200, batch=64, sample_steps=20, lr=3e-3, reward_scale=scale)
    reward = lambda x: -((x[:, 0] - a) ** 2) / 2  # noqa: E731
    tuned, losses = adjoint_matching(base, lambda m: m, _source, reward, config, torch.Generator().manual_seed(1))
    x, before = _ode_samples(tuned), _ode_samples(base)
    assert abs(float(before.mean())) < 0.05 and abs(float(before.var()) - 1) < 0.1  # base left as it was
    assert float(x.mean()) == pytest.approx(scale * a / (1 + scale), abs=0.12)
    assert float(x.var()) == pytest.approx(1 / (1 + scale), abs=0.08)
    assert sum(losses[-20:]) < sum(losses[:20]) / 3


def test_a_flat_reward_leaves_the_flow_as_trained_and_the_loss_pulls_a_perturbed_flow_back():
    base = GaussianFlow()
    config = AdjointMatchingConfig(steps=5, batch=16, sample_steps=10, lr=1e-2)
    flat = lambda x: torch.full((len(x),), 3.0)  # noqa: E731  (no gradient at all)
    tuned, losses = adjoint_matching(base, lambda m: m, _source, flat, config, torch.Generator().manual_seed(0))
    assert losses == [0.0] * 5
    assert all(torch.equal(p, q) for p, q in zip(tuned.parameters(), base.parameters()))
    # a field pushed by +1 everywhere samples far from N(0, 1); regressing toward the base under a flat reward undoes it
    shifted = copy.deepcopy(base)
    nn.init.constant_(shifted.net[-1].bias, 1.0)
    assert float(_ode_samples(shifted).mean()) > 1
    optimizer, times = torch.optim.Adam(shifted.parameters(), lr=1e-2), torch.linspace(0, 1, 11)
    generator = torch.Generator().manual_seed(2)
    for _ in range(150):
        path = sample_memoryless(shifted, _source(32, generator), times, generator)
        adjoint = lean_adjoint(base, path, times, flat)
        loss = adjoint_matching_loss(shifted, base, path, adjoint, times)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x = _ode_samples(shifted)
    assert abs(float(x.mean())) < 0.1 and float(x.var()) == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": 0}, "steps must be an integer in"),
        ({"sample_steps": 1}, "sample_steps must be >= 2"),
        ({"reward_scale": float("nan")}, "reward_scale must be a positive finite number"),
        ({"lr": -1.0}, "lr must be a positive finite number"),
        ({"batch": True}, "batch must be an integer"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ConfigError, match=message):
        AdjointMatchingConfig(**settings)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny flow-matching run and a tiny diffusion run on one zoo."""
    folder = tmp_path_factory.mktemp("am")
    (folder / "tiny.toml").write_text(TINY_RUN)
    (folder / "lotka-volterra-flow.toml").write_text(f'extends = "tiny.toml"\nmethod = "flow-matching"\n\n{FLOW}')
    for name, config in (("flow", "lotka-volterra-flow.toml"), ("diffusion", "tiny.toml")):
        argv = ["train", "--config", str(folder / config), "--out", str(folder / name), "--cache", str(folder / "c")]
        assert main(argv) == 0
    return folder


def test_the_method_tunes_each_environment_and_is_paired_with_best_of_n(runs, capsys):
    out = runs / "am.json"
    argv = ["evaluate", "--run", str(runs / "flow"), "--method", "adjoint-matching", "--method", "flow-matching"]
    assert main([*argv, "--frames", "3", "--candidates", "3", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    tuned = [r for r in rows if r["method"] == "adjoint-matching"]
    assert [r["split"] for r in tuned] == ["test_in", "val_out", "test_out"]
    for row in tuned:
        assert row["n_envs"] == 2 and row["seconds_per_env"] > 0 and row["candidates"] == 3
        assert row["adjoint_matching"]["steps"] >= 1 and set(row["tuning_loss"]) == {"first", "last"}
    assert main([*argv, "--frames", "3", "--candidates", "3", "--out", str(out)]) == 0  # seeded: the same experts
    assert [r["rmse_per_step"] for r in json.loads(out.read_text())] == [r["rmse_per_step"] for r in rows]


def test_the_method_refuses_a_diffusion_run_one_observed_frame_and_frames_of_another_shape(runs, capsys):
    argv = ["evaluate", "--run", str(runs / "diffusion"), "--method", "adjoint-matching", "--out", str(runs / "x.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "adjoint matching tunes a flow generator" in err and "'dit-diffusion'" in err and "\n" not in err
    argv = ["evaluate", "--run", str(runs / "flow"), "--method", "adjoint-matching", "--frames", "1"]
    assert main([*argv, "--out", str(runs / "x.json")]) == 2
    assert "observe 2 or more" in capsys.readouterr().err
    run = Run.load(runs / "flow")
    for frames in (torch.zeros(2, 3, 2), torch.zeros(1, 3, 5), torch.zeros(1, 1, 2)):
        with pytest.raises(ConfigError, match=rf"frames \[1, L >= 2, 2\], got \{list(frames.shape)}"):
            frame_reward(run, frames)


def test_a_matrix_passes_its_settings_to_the_evaluating_method_and_names_bad_ones(runs):
    text = (
        'seeds = [0]\nobserved_frames = 3\ncandidates = 2\n[systems.lotka-volterra]\nconfig = "tiny.toml"\n'
        '[methods.tilted]\nconfig = "{system}-flow.toml"\nevaluate = "adjoint-matching"\n'
    )
    (runs / "m.toml").write_text(
        text + 'settings = { steps = 3, reward_scale = 2.0 }\n[methods.flow]\nconfig = "{system}-flow.toml"\n'
    )
    plan = plan_bench(Matrix.from_toml(runs / "m.toml"))
    (tilted,) = [c for c in plan.cells if c.method == "tilted"]
    assert tilted.settings == {"steps": 3, "reward_scale": 2.0}
    (flow,) = [c for c in plan.cells if c.method == "flow"]
    assert plan.nodes[plan.evaluation[tilted.id]].task["spec"]["settings"] == {"adjoint-matching": tilted.settings}
    assert "settings" not in plan.nodes[plan.evaluation[flow.id]].task["spec"]  # other cells keep their keys
    for bad, message in (("{ steps = 0 }", "steps must be an integer"), ("{ colour = 1 }", "unknown setting")):
        (runs / "bad.toml").write_text(text + f"settings = {bad}\n")
        with pytest.raises(ConfigError, match=rf"\[methods\]\.tilted: adjoint.matching: .*{message}"):
            Matrix.from_toml(runs / "bad.toml")
    (runs / "bad.toml").write_text(
        text.replace('evaluate = "adjoint-matching"', 'evaluate = "generated"') + "settings = { steps = 3 }\n"
    )
    with pytest.raises(ConfigError, match="method 'generated' does not take settings"):
        Matrix.from_toml(runs / "bad.toml")


def test_generate_tunes_toward_a_users_frames_and_refuses_bad_ones(runs, capsys):
    from safetensors.torch import save_file

    frames = Run.load(runs / "flow").zoo.dataset()["val_out"].trajectories[0, :4].float()
    save_file({"frames": frames.contiguous()}, str(runs / "frames.safetensors"))
    argv = ["generate", "--run", str(runs / "flow"), "--frames", str(runs / "frames.safetensors"), "--n", "3"]
    assert main([*argv, "--tune-steps", "2", "--out", str(runs / "tuned")]) == 0
    record = json.loads((runs / "tuned" / "config.json").read_text())
    assert record["adjoint_matching"]["steps"] == 2 and "tuned the generator" in capsys.readouterr().out
    save_file({"frames": frames[:, :1].contiguous()}, str(runs / "narrow.safetensors"))
    bad = [*argv[:3], "--frames", str(runs / "narrow.safetensors"), "--tune-steps", "2", "--out", str(runs / "no")]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip()
    assert "frames [1, L >= 2, 2], got [1, 4, 1]" in err and "\n" not in err
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--tune-steps", "0", "--out", str(runs / "no")])
    assert stop.value.code == 2
    assert (
        main(["generate", "--run", str(runs / "diffusion"), *argv[3:], "--tune-steps", "2", "--out", str(runs / "no")])
        == 2
    )
    assert "'dit-diffusion'" in capsys.readouterr().err
