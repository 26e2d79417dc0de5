"""One-per-Env, the ceiling: each environment's expert trained from the base and from scratch to
convergence (early stopping on its held-out trajectory), keeping the run with the lower validation loss."""

import json
import math
from dataclasses import replace

import pytest
import torch

import weightspace_methods.baselines as baselines
from weightspace.errors import ConfigError
from weightspace.evaluate.adaptation import (
    base_experts,
    environment_trajectories,
    finetune_base,
    train_environments,
    training_data,
)
from weightspace.evaluate.evaluation import split_environments
from weightspace.method import EvaluationOptions
from weightspace.zoo import TrainingError, build_zoo
from weightspace.zoo.trainer import validation_windows, window_loss

from .test_zoo import tiny_plan

train = train_environments  # One-per-Env's trainer, before a test wraps it


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build_zoo(tiny_plan(), tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module")
def unseen(zoo):
    """Every environment of the test splits as if unseen (training trajectories simulated from the
    seed stream ``oracle``, the last held out for validation): a few environments to choose for."""
    env_index = torch.cat([split_environments(zoo, s).env_index for s in ("test_in", "test_out")])
    return env_index, training_data(zoo, environment_trajectories(zoo, "test_out", env_index))


def validation_loss(zoo, params, data, config):
    """The trainer's validation loss per expert of ``params``, expert e on environment e's held-out windows."""
    n = next(iter(params.values())).shape[0]
    windows = validation_windows(data, torch.arange(n), config)
    with torch.no_grad():
        return window_loss(zoo.adapter, params, windows, data.scale, data.dt)


def both_runs(zoo, env_index, data, configs, label="one-per-env"):
    """The two runs One-per-Env chooses between, trained directly."""
    inits = {
        "base": base_experts(zoo, len(env_index)),
        "scratch": baselines.scratch_experts(zoo, env_index, f"{label}-scratch"),
    }
    return {
        s: train_environments(zoo, init, env_index, data, configs[s], f"{label}-{s}")[0] for s, init in inits.items()
    }


def test_each_environment_keeps_the_run_with_the_lower_validation_loss(zoo, unseen):
    env_index, data = unseen
    configs = baselines.ceiling_configs(zoo.zoo_settings)
    settings = zoo.zoo_settings
    assert configs["base"].steps == 5 * settings.expert_steps and configs["base"].lr == settings.expert_lr
    assert configs["scratch"].steps == 2 * settings.base_steps and configs["scratch"].lr == settings.lr
    # patient: a run is given up only after the zoo's whole budget for its start without improving
    assert configs["base"].patience * settings.eval_every >= settings.expert_steps
    assert configs["scratch"].patience * settings.eval_every >= settings.base_steps
    adapted = baselines.one_per_env(zoo, env_index, data)
    runs = both_runs(zoo, env_index, data, configs)
    scratch_wins = runs["scratch"].val_loss < runs["base"].val_loss
    for e, wins in enumerate(scratch_wins.tolist()):
        winner = runs["scratch" if wins else "base"].params
        assert all(torch.equal(adapted.params[k][e], winner[k][e]) for k in winner)
    expected = torch.minimum(runs["base"].val_loss, runs["scratch"].val_loss)
    torch.testing.assert_close(validation_loss(zoo, adapted.params, data, configs["base"]), expected)
    n_scratch = int(scratch_wins.sum())
    assert adapted.fields["ceiling_init"] == {"base": len(env_index) - n_scratch, "scratch": n_scratch}
    best = torch.where(scratch_wins, runs["scratch"].best_step, runs["base"].best_step)
    assert adapted.fields["ceiling_best_step"] == pytest.approx(best.double().mean().item())
    assert adapted.fields["ceiling_steps"] == {"base": configs["base"].steps, "scratch": configs["scratch"].steps}
    assert adapted.seconds_per_env > 0


def test_a_diverging_run_falls_back_to_its_best_checkpoint(zoo, unseen):
    env_index, data = unseen
    # a learning rate far too high: both runs get worse after some evaluation and are stopped
    diverging = replace(zoo.zoo_settings.training(base=True), steps=60, lr=5.0, eval_every=2, patience=3)
    configs = {"base": diverging, "scratch": diverging}
    adapted = baselines.one_per_env(zoo, env_index, data, configs)
    runs = both_runs(zoo, env_index, data, configs)
    for run in runs.values():  # training did diverge: a later evaluation was worse than the kept one
        curve = torch.nan_to_num(run.val_curve, nan=-1.0, posinf=math.inf)
        assert (curve.max(dim=0).values > run.val_loss).all() and (run.best_step < 60).all()
    kept = validation_loss(zoo, adapted.params, data, diverging)
    torch.testing.assert_close(kept, torch.minimum(runs["base"].val_loss, runs["scratch"].val_loss))
    assert all(torch.isfinite(v).all() for v in adapted.params.values())


def scaled(params, factor):
    """``params`` times ``factor``: a number, or one per expert ``[E]``."""
    factor = torch.as_tensor(factor)
    return {k: factor.view(-1, *[1] * (v.dim() - 1)) * v for k, v in params.items()}


def test_a_bad_base_loses_to_scratch_and_a_diverged_scratch_run_to_the_base(zoo, unseen, monkeypatch):
    env_index, data = unseen
    n = len(env_index)
    # a base with its weights blown up 100x: fine-tuning from it cannot catch up with a fresh start
    monkeypatch.setattr(baselines, "base_experts", lambda zoo, n: scaled(base_experts(zoo, n), 100.0))
    adapted = baselines.one_per_env(zoo, env_index, data)
    assert adapted.fields["ceiling_init"] == {"base": 0, "scratch": n}
    monkeypatch.undo()
    # a fresh start that is NaN: its validation loss is inf throughout, the base run is kept
    fresh = baselines.scratch_experts
    monkeypatch.setattr(baselines, "scratch_experts", lambda *a: scaled(fresh(*a), math.nan))
    adapted = baselines.one_per_env(zoo, env_index, data)
    assert adapted.fields["ceiling_init"] == {"base": n, "scratch": 0}
    assert all(torch.isfinite(v).all() for v in adapted.params.values())


def test_both_runs_diverged_is_a_training_error_naming_the_environment(zoo, unseen, monkeypatch):
    env_index, data = unseen
    base, fresh = baselines.base_experts, baselines.scratch_experts
    nan_first = torch.tensor([math.nan] + [1.0] * (len(env_index) - 1))  # only the first environment's starts
    monkeypatch.setattr(baselines, "base_experts", lambda *a: scaled(base(*a), nan_first))
    monkeypatch.setattr(baselines, "scratch_experts", lambda *a: scaled(fresh(*a), nan_first))
    config = replace(zoo.zoo_settings.training(base=True), steps=4, eval_every=2, patience=1)
    with pytest.raises(TrainingError, match=f"environment\\(s\\) {int(env_index[0])} diverged"):
        baselines.one_per_env(zoo, env_index, data, {"base": config, "scratch": config})


def test_one_per_env_is_seeded_and_its_row_fields_are_json(zoo):
    method = baselines.OnePerEnv()
    environments = split_environments(zoo, "test_in")
    first = method.adapt(zoo, None, environments, EvaluationOptions())
    second = method.adapt(zoo, None, environments, EvaluationOptions())
    assert all(torch.equal(first.params[k], second.params[k]) for k in first.params)
    assert first.fields == second.fields
    fields = json.loads(json.dumps(first.fields, allow_nan=False))
    assert sum(fields["ceiling_init"].values()) == len(environments.env_index)
    assert 0 <= fields["ceiling_at_cap"] <= len(environments.env_index)
    # a fresh initialization per environment: seeded by the environment alone
    one = baselines.scratch_experts(zoo, environments.env_index[1:], "s")
    both = baselines.scratch_experts(zoo, environments.env_index, "s")
    assert all(torch.equal(one[k][0], both[k][1]) for k in one) and not torch.equal(
        both["layers.0.weight"][0], both["layers.0.weight"][1]
    )


def test_every_split_trained_at_once_gives_each_split_its_own_experts_and_fields(zoo, monkeypatch):
    method, options = baselines.OnePerEnv(), EvaluationOptions()
    splits = [split_environments(zoo, s) for s in ("test_in", "val_out", "test_out")]
    trained = []
    monkeypatch.setattr(
        baselines,
        "train_environments",
        lambda zoo, init, env, *a: trained.append(len(env)) or train(zoo, init, env, *a),
    )
    together = method.adapt_splits(zoo, None, splits, options)
    assert trained == [sum(len(e.env_index) for e in splits)] * 2  # one run per start for all splits
    for environments, part in zip(splits, together):
        alone = method.adapt(zoo, None, environments, options)
        for k in alone.params:
            torch.testing.assert_close(part.params[k], alone.params[k], rtol=1e-4, atol=1e-5)
        assert part.fields == alone.fields


def test_one_start_is_that_runs_experts_and_bad_starts_are_named(zoo, unseen):
    env_index, data = unseen
    configs = baselines.ceiling_configs(zoo.zoo_settings)
    runs = both_runs(zoo, env_index, data, configs)
    for start in baselines.STARTS:
        adapted = baselines.one_per_env(zoo, env_index, data, starts=(start,))
        assert all(torch.equal(adapted.params[k], runs[start].params[k]) for k in adapted.params)
        assert adapted.fields["ceiling_init"] == {start: len(env_index)}
        assert adapted.fields["ceiling_steps"] == {start: configs[start].steps}
    assert baselines.OnePerEnv(starts=["scratch", "base"]).starts == baselines.STARTS  # ties still go to the base
    for bad in ([], ["base", "base"], ["middle"], "base"):
        with pytest.raises(ConfigError, match="starts must be a non-empty list of distinct starts among base, scratch"):
            baselines.OnePerEnv(starts=bad)


def test_finetune_base_is_training_from_the_base(zoo, unseen):
    env_index, data = unseen
    config = replace(zoo.zoo_settings.training(base=False), steps=6, eval_every=3)
    params, seconds = finetune_base(zoo, env_index, data, config, "label")
    result, _ = train_environments(zoo, base_experts(zoo, len(env_index)), env_index, data, config, "label")
    assert all(torch.equal(params[k], result.params[k]) for k in params) and seconds > 0
