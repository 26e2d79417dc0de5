"""CoDA and GEPS: contexts learn what tells environments apart, adaptation fits the observed frames,
both run through `weightspace evaluate`, bad settings are named (a third party's architecture:
tests/test_third_party_plugin.py)."""

import json
import math

import pytest
import torch
from scipy.stats import spearmanr

from weightspace.cli import main
from weightspace.data.trajectories import by_environment
from weightspace.errors import ConfigError
from weightspace.evaluate.adaptation import observed_frames
from weightspace.evaluate.evaluation import split_environments
from weightspace.method import EvaluationOptions
from weightspace.registry import default_registry
from weightspace.zoo import build_zoo, plan_zoo
from weightspace_meta.context import adapt_contexts
from weightspace_meta.geps import GepsModel
from weightspace_meta.methods import Coda, Geps

# Lotka-Volterra environments that differ by one scalar (b; d fixed): 6 seen, 1 validation, 1 test
ONE_SCALAR = {"n_b": 8, "n_d": 1, "n_seen": 6, "n_train": 4, "n_test": 1, "n_frames": 21}
ZOO = {"size": 1, "base_steps": 400, "expert_steps": 10, "eval_every": 20, "unroll": 4, "max_loss": 100.0}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    plan = plan_zoo(
        default_registry(),
        "lotka-volterra",
        "mlp-node",
        "quick",
        seed=3,
        system_overrides=ONE_SCALAR,
        architecture_overrides={"hidden_width": 16},
        zoo_overrides=ZOO,
    )
    return build_zoo(plan, tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module", params=[Coda, Geps], ids=["coda", "geps"])
def trained(request, zoo):
    method = request.param(context_dim=1)
    model, contexts, fields = method.train(zoo)
    return method, model, contexts, fields


def test_the_learned_context_orders_the_environments_by_their_scalar(zoo, trained):
    _, _, contexts, fields = trained
    seen, _, _ = by_environment(zoo.dataset()["train"])
    b = zoo.system().environments()[seen][:, 0]
    assert abs(spearmanr(contexts[:, 0].numpy(), b.numpy()).statistic) >= 0.8
    assert fields["kept_step"] > 0 and fields["adapted_parameters"] == 1


def test_adapting_the_context_lowers_the_residual_on_the_observed_frames(zoo, trained):
    method, model, contexts, _ = trained
    unseen = torch.cat([split_environments(zoo, s).env_index for s in ("val_out", "test_out")])
    frames = observed_frames(zoo.system(), unseen, 6, zoo.manifest["seed"]).float()
    start = contexts.mean(dim=0) if method.adapt_from_mean else torch.zeros(1)
    fitted, before, after = adapt_contexts(
        model, zoo.adapter, frames, start, zoo.scale, zoo.dt, steps=100, lr=1e-2, unroll=4
    )
    assert (after < 0.9 * before).all(), (before, after)
    assert not torch.equal(fitted, start.expand_as(fitted))
    assert all(p.requires_grad for p in model.parameters())  # the shared network is frozen only while adapting


@pytest.mark.parametrize("method", ["coda", "geps"])
def test_each_method_is_evaluated_from_the_zoo_with_its_costs_in_the_rows(zoo, method, tmp_path):
    out = tmp_path / "r.json"
    argv = ["evaluate", "--zoo", str(zoo.path), "--method", method, "--finetune-steps", "20", "--out", str(out)]
    assert main(argv) == 0
    rows = json.loads(out.read_text())
    assert {r["split"] for r in rows} == {"test_in", "val_out", "test_out"}
    assert all(math.isfinite(r["rmse_mean"]) and r["method"] == method for r in rows)
    expected = {"coda": Coda(), "geps": Geps()}[method].context_dim
    assert all(r["adapted_parameters"] == expected for r in rows)
    assert all(r["shared_parameters"] > r["adapted_parameters"] and r["seconds_per_env"] > 0 for r in rows)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Coda(context_dim=0), "coda: context size must be a positive integer, got 0"),
        (lambda: Geps(context_dim=-1), "geps: context size must be a positive integer, got -1"),
        (lambda: Coda(lambda_w=math.nan).build({"w": torch.zeros(1, 2, 2)}, 0), "CoDA's lambda_w must be a finite"),
        (lambda: GepsModel({"w": torch.zeros(1, 3, 2)}, 4), "GEPS rank 4 is above the width of layer 'w' \\(3 x 2\\)"),
    ],
)
def test_bad_settings_are_named(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_one_observed_frame_is_refused(zoo):
    environments = split_environments(zoo, "test_out")
    with pytest.raises(ConfigError, match="it needs L >= 2, got L=1"):
        Coda().adapt_splits(zoo, None, [environments], EvaluationOptions(observed_frames=1))
