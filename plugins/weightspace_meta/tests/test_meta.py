"""CoDA and GEPS: contexts learn what tells environments apart, adaptation fits the observed frames,
checkpoints are chosen by the validation score, the trained model is stored and reloaded (a tampered
one refused), both run through `weightspace evaluate`, bad settings are named (a third party's
architecture: tests/test_third_party_plugin.py)."""

import json
import math

import pytest
import torch
from scipy.stats import spearmanr

from weightspace.cli import main
from weightspace.data.dataset import Dataset, Split
from weightspace.data.trajectories import by_environment
from weightspace.errors import ConfigError
from weightspace.evaluate.adaptation import observed_frames, training_data
from weightspace.evaluate.evaluation import split_environments
from weightspace.method import EvaluationOptions
from weightspace.registry import default_registry
from weightspace.zoo import build_zoo, plan_zoo
from weightspace.zoo.trainer import TrainConfig
from weightspace_meta import methods
from weightspace_meta.context import adapt_contexts, fit_context_model
from weightspace_meta.geps import GepsModel
from weightspace_meta.methods import Coda, Geps

# Lotka-Volterra environments that differ by one scalar (b; d fixed): 6 seen, 1 validation, 1 test
ONE_SCALAR = {"n_b": 8, "n_d": 1, "n_seen": 6, "n_train": 4, "n_test": 1, "n_frames": 21}
ZOO = {"size": 1, "base_steps": 400, "expert_steps": 10, "eval_every": 20, "unroll": 4, "max_loss": 100.0}
OPTIONS = EvaluationOptions(observed_frames=4, finetune_steps=20)


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
    model, contexts, fields = method.train(zoo, OPTIONS)
    return method, model, contexts, fields


def test_the_learned_context_orders_the_environments_by_their_scalar(zoo, trained):
    _, _, contexts, fields = trained
    seen, _, _ = by_environment(zoo.dataset()["train"])
    b = zoo.system().environments()[seen][:, 0]
    assert abs(spearmanr(contexts[:, 0].numpy(), b.numpy()).statistic) >= 0.8
    assert fields["kept_step"] > 0 and fields["adapted_parameters"] == 1
    assert math.isfinite(fields["validation_rmse"])


def test_adapting_the_context_lowers_the_residual_on_the_observed_frames(zoo, trained):
    method, model, contexts, _ = trained
    unseen = torch.cat([split_environments(zoo, s).env_index for s in ("val_out", "test_out")])
    frames = observed_frames(zoo.system(), unseen, 6, zoo.manifest["seed"]).float()
    start = method.start(contexts)
    fitted, before, after = adapt_contexts(
        model, zoo.adapter, frames, start, zoo.scale, zoo.dt, steps=100, lr=1e-2, unroll=4
    )
    assert (after < 0.9 * before).all(), (before, after)
    assert not torch.equal(fitted, start.expand_as(fitted))
    assert all(p.requires_grad for p in model.parameters())  # the shared network is frozen only while adapting


def test_the_kept_checkpoint_is_the_best_scored_and_training_stops_after_patience(zoo):
    """Scores 5, 3, 4, 1, 2, 2, 2, ... at steps 0, 10, 20, ...: step 30 is kept, and with a patience of 3
    checks training stops at step 60, its model left in the state it had at step 30."""
    model = Coda(context_dim=1).build(zoo.adapter.init_params(1, seed=0), 0)
    _, _, trajectories = by_environment(zoo.dataset()["train"])
    scores, states = iter([5.0, 3.0, 4.0, 1.0] + [2.0] * 20), []

    def score(model, contexts):
        states.append([p.detach().clone() for p in model.parameters()])
        return next(scores)

    config = TrainConfig(steps=200, lr=1e-2, batch_size=2, unroll=1, eval_every=10, patience=3)
    result = fit_context_model(model, zoo.adapter, training_data(zoo, trajectories), config, 0, score)
    assert (result.best_step, result.score, len(states)) == (30, 1.0, 7)
    for kept, checked in zip(model.parameters(), states[3], strict=True):
        torch.testing.assert_close(kept.detach(), checked)
    assert not torch.equal(states[3][0], states[6][0])


def test_the_trained_model_is_stored_in_the_zoo_and_reloaded(zoo, trained, monkeypatch):
    method, model, contexts, fields = trained
    stored = list((zoo.path / "methods").glob(f"{method.name}-*/manifest.json"))
    assert len(stored) == 1

    def retrain(*args, **kwargs):
        raise AssertionError("a stored model was trained again")

    monkeypatch.setattr(methods, "fit_context_model", retrain)
    again, again_contexts, again_fields = type(method)(context_dim=1).train(zoo, OPTIONS)
    assert again_fields == fields
    torch.testing.assert_close(again_contexts, contexts)
    for a, b in zip(again.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(AssertionError, match="trained again"):  # other settings: another model
        type(method)(context_dim=1).train(zoo, EvaluationOptions(observed_frames=4, finetune_steps=21))


@pytest.mark.parametrize("method", ["coda", "geps"])
def test_a_tampered_stored_model_is_refused_with_one_line(zoo, method, tmp_path, capsys):
    argv = ["evaluate", "--zoo", str(zoo.path), "--method", method, "--finetune-steps", "20"]
    argv += ["--out", str(tmp_path / "r.json")]
    assert main(argv) == 0  # trains and stores the model, or loads the one stored
    manifest = next(
        m
        for m in (zoo.path / "methods").glob(f"{method}-*/manifest.json")
        if json.loads(m.read_text())["settings"]["options"]["finetune_steps"] == 20
        and json.loads(m.read_text())["settings"]["hyperparameters"]["context_dim"] > 1
    )
    file, text = manifest.with_name("model.safetensors"), manifest.read_text()
    original = file.read_bytes()
    tampered = [
        (file, original[:-4] + bytes(4), "does not match the sha256"),
        (manifest, text.replace('"format_version": 1', '"format_version": "1"'), "'format_version' must be an integer"),
        (manifest, "[]", "the manifest must be a JSON object, got []"),
    ]
    for path, content, message in tampered:
        try:
            (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
            capsys.readouterr()
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert message in err and len(err.splitlines()) == 1, err
        finally:
            file.write_bytes(original)
            manifest.write_text(text)
    assert main(argv) == 0


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
        (lambda: Coda(start="one"), "coda: start must be one of zero, mean, got 'one'"),
    ],
)
def test_bad_settings_are_named(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_codas_start_is_zero_or_the_seen_contexts_mean_and_keys_its_stored_model():
    contexts = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert torch.equal(Coda().start(contexts), torch.zeros(2))
    assert torch.equal(Coda(start="mean").start(contexts), torch.tensor([2.0, 3.0]))
    assert "start" not in Coda().hyperparameters()  # models stored before the setting existed stay valid
    assert Coda(start="mean").hyperparameters()["start"] == "mean"


def test_one_observed_frame_is_refused(zoo):
    environments = split_environments(zoo, "test_out")
    with pytest.raises(ConfigError, match="it needs L >= 2, got L=1"):
        Coda().adapt_splits(zoo, None, [environments], EvaluationOptions(observed_frames=1))


def test_a_zoo_without_validation_environments_is_refused(zoo, monkeypatch):
    dataset = zoo.dataset()
    empty = Split(*(t[:0] for t in (dataset["val_out"].trajectories, dataset["val_out"].env_params)), torch.zeros(0))
    monkeypatch.setattr(type(zoo), "dataset", lambda self: Dataset({**dataset.splits, "val_out": empty}, dataset.attrs))
    with pytest.raises(ConfigError, match="geps chooses its checkpoint on validation environments; .* has none"):
        Geps(context_dim=1).train(zoo, EvaluationOptions(observed_frames=4, finetune_steps=3))
