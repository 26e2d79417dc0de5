"""A third party's encoder, generator and prompter (docs/examples/generative-plugin), installed from
a temporary directory as a user would: they keep the component contracts (ODE states and
multi-channel fields alike) and run a whole pipeline from the command line on a two-channel system
(simulate, zoo build, train on that zoo, evaluate), on the example's own tiny run config."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from weightspace.components import Context
from weightspace.registry import Registry, default_registry
from weightspace.testing import check_component_round_trip

from .conftest import EXAMPLES, cli_with, install_example

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXAMPLE = EXAMPLES / "generative-plugin"
SOURCE = "generative (weightspace-generative-plugin 0.1.0)"
COMPONENTS = {"encoders": "pca", "generators": "gaussian", "prompters": "channel-stats"}
TINY = tomllib.loads((EXAMPLE / "tiny.toml").read_text())


def _assignments(section: str, prefix: str = "") -> list[str]:
    """``--set`` options of a section of tiny.toml (lists as ``a,b``)."""
    values = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in TINY[section].items()}
    return [f"--set={prefix}{key}={value}" for key, value in values.items()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    return install_example("generative-plugin", tmp_path_factory)


def _contexts(registry: Registry) -> dict[str, Context]:
    """Contexts of an ODE zoo (mlp-node on 2-D states) and of a two-channel field zoo (FNO)."""
    mlp = registry.architecture("mlp-node", {"hidden_width": 4})
    fno = registry.architecture("fno", {**TINY["architecture_config"], "in_channels": 2, "out_channels": 2})
    return {"ode": Context(mlp.spec.to_json(), (2,), 2), "field": Context(fno.spec.to_json(), (2, 16, 16), 1)}


@pytest.fixture
def on_path(installed, monkeypatch):
    """The installed plugin on sys.path, and the process-wide registry rebuilt to see it (and rebuilt
    again without it afterwards)."""
    monkeypatch.syspath_prepend(str(installed))
    default_registry.cache_clear()
    yield installed
    default_registry.cache_clear()


def test_the_components_register_and_keep_their_contracts(on_path, tmp_path):
    installed, registry = on_path, Registry()
    for kind, name in COMPONENTS.items():
        assert registry.entries(kind)[name].source == SOURCE
    listed = json.loads(cli_with(installed, "plugins", "--json").stdout)
    assert all(name in listed[kind] for kind, name in COMPONENTS.items())

    g = torch.Generator().manual_seed(0)
    for label, context in _contexts(registry).items():
        torch.manual_seed(0)
        prompter = registry.get("prompters", "channel-stats").from_overrides({"dim": "6"}, context)
        trajectories = torch.randn(2, 3, 5, *context.state_shape, generator=g)  # [G, n, T, *state]
        prompter.fit_scale(trajectories)
        for length in (1, 4):  # any number of observed frames
            condition = prompter(trajectories[:, 0, :length], torch.zeros(2, context.n_env_params))
            assert condition.shape == (2, 6) and torch.isfinite(condition).all(), label

        encoder = registry.get("encoders", "pca").from_overrides({"latent_dim": "3", "tokens": "2"}, context)
        nodes = tuple(torch.randn(4, grp.n_nodes, grp.feat_dim, generator=g) for grp in context.spec.groups)
        mean, logvar = encoder.encode(nodes)
        assert mean.shape == logvar.shape == (4, *encoder.latent_shape) == (4, 2, 3)
        decoded = encoder.decode(mean)
        assert [d.shape for d in decoded] == [n.shape for n in nodes]
        # orthonormal directions: decoding then encoding a latent gives it back
        assert torch.allclose(encoder.encode(encoder.decode(mean))[0], mean, atol=1e-4)

        full = Context(context.spec_json, context.state_shape, context.n_env_params, 2, 3, prompter.dim)
        generator = registry.get("generators", "gaussian").from_overrides({}, full)
        latents = 5 + 2 * torch.randn(8, 2, 3, generator=g)
        generator.fit_scale(latents)
        loss = generator.training_loss(latents, torch.randn(8, 6, generator=g), g)
        loss.backward()
        assert loss.ndim == 0 and generator.log_std.grad is not None
        condition = torch.randn(3, 6, generator=g)
        sample = generator.sample(condition, torch.Generator().manual_seed(1))
        assert sample.shape == (3, 2, 3)
        assert torch.equal(sample, generator.sample(condition, torch.Generator().manual_seed(1)))

        # config.json + weights.safetensors, the buffers fitted by fit_scale included
        check_component_round_trip([encoder, generator, prompter], tmp_path / label)


def test_the_components_run_through_simulate_zoo_train_and_evaluate(installed, tmp_path):
    simulated = cli_with(
        installed, "simulate", "lambda-omega", "--out", str(tmp_path / "data"), *_assignments("system_settings")
    )
    assert simulated.returncode == 0, simulated.stderr
    assert (tmp_path / "data" / "lambda-omega-quick.h5").is_file()

    zoo = tmp_path / "zoo"
    # the zoo tiny.toml describes (seed 0: the default), for `train --zoo` to take it
    settings = _assignments("system_settings", "system.") + _assignments("architecture_config", "arch.")
    settings += _assignments("zoo", "zoo.")
    built = cli_with(
        installed, "zoo", "build", "--system", "lambda-omega", "--arch", "fno", "--out", str(zoo), *settings
    )
    assert built.returncode == 0, built.stderr

    run = tmp_path / "run"
    trained = cli_with(installed, "train", "--config", str(EXAMPLE / "tiny.toml"), "--zoo", str(zoo), "--out", str(run))
    assert trained.returncode == 0, trained.stderr
    meta = json.loads((run / "run.json").read_text())
    assert (run / meta["stages"]["zoo"]).resolve() == zoo.resolve()  # the built zoo, not a second one
    assert not list(run.glob("zoo-*"))
    assert {meta["config"][kind]["name"] for kind in ("encoder", "generator", "prompter")} == set(COMPONENTS.values())
    for stage, parts in (("encoder", ("encoder",)), ("generator", ("generator", "prompter"))):
        for part in parts:
            saved = json.loads((run / meta["stages"][stage] / part / "config.json").read_text())
            assert saved["name"] == COMPONENTS[f"{part}s"]
    encoder_stage = json.loads((run / meta["stages"]["encoder"] / "stage.json").read_text())
    assert encoder_stage["history"] and math.isfinite(encoder_stage["held_out"]["function_error"])

    results = tmp_path / "results.json"
    evaluated = cli_with(
        installed, "evaluate", "--run", str(run), "--frames", "3", "--candidates", "2", "--out", str(results)
    )
    assert evaluated.returncode == 0, evaluated.stderr
    rows = json.loads(results.read_text())
    assert sorted((r["method"], r["split"]) for r in rows) == [
        ("pca-gaussian", "test_in"),
        ("pca-gaussian", "test_out"),
        ("pca-gaussian", "val_out"),
    ]
    for r in rows:
        assert r["system"] == "lambda-omega" and r["n_envs"] >= 1 and math.isfinite(r["rmse_mean"])
        assert r["gen_latency_ms"] > 0 and r["candidates"] == 2 and r["observed_frames"] == 3
