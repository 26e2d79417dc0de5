"""Generator training and gradient-free adaptation: EMA weights, determinism, candidate selection, rejection."""

import copy
import math
from dataclasses import dataclass, replace

import pytest
import torch

import weightspace as ws
from weightspace.architecture import ArchitectureAdapter
from weightspace.components import Context, Generator, Prompter
from weightspace.data.trajectories import ChannelScale
from weightspace.errors import WeightError
from weightspace.graph import GraphNormalizer
from weightspace.metrics import observation_residual, rollout_experts
from weightspace.pipeline.encoding import WeightCodec
from weightspace.pipeline.generation import (
    EnvironmentScale,
    GeneratorTraining,
    fit_generator,
    generate_experts,
    validation_rmse,
)
from weightspace.registry import default_registry

TRAINING = GeneratorTraining(steps=20, batch_size=8, max_frames=4, ema=0.9)
"""A decay of 0.9 over 20 steps: the average still weighs the initial weights by 0.9**20 ~ 0.12, and
the last step by 0.1, so it is far from both (at the default 0.995 it would barely leave the start)."""
DT = 0.1


@dataclass
class Trained:
    adapter: ArchitectureAdapter
    codec: WeightCodec
    generator: Generator
    prompter: Prompter
    traj: torch.Tensor
    scale: ChannelScale
    env_params: torch.Tensor
    latents: torch.Tensor
    history: list[dict[str, float]]
    initial: dict[str, torch.Tensor]
    """Both modules' parameters before training."""
    raw: list[dict[str, torch.Tensor]]
    """The trained (not averaged) parameters after each optimizer step."""


def parameters(generator: torch.nn.Module, prompter: torch.nn.Module) -> dict[str, torch.Tensor]:
    modules = torch.nn.ModuleDict({"generator": generator, "prompter": prompter})
    return {k: v.detach().clone() for k, v in modules.named_parameters()}


def component(kind: str, name: str, context: Context, **overrides):
    """A registered component (DynaDiff's, here) by name: the modules that define them may move."""
    return default_registry().get(kind, name).from_overrides(overrides, context)


@pytest.fixture(scope="module")
def setup() -> Trained:
    adapter = ws.architecture("mlp-node", hidden_width=6)
    system = ws.system("lotka-volterra", n_b=2, n_d=2, n_seen=2, n_frames=11)
    traj = system.simulate(torch.arange(4), 3, seed=0).float()
    env_params = system.environments()[:4].float()
    params = adapter.init_params(8, seed=0)
    context = Context(adapter.spec.to_json(), (2,), 2)
    encoder = component("encoders", "graph-vae", context, width=16, latent_dim=4, heads=2).eval()
    codec = WeightCodec(encoder, GraphNormalizer.fit(adapter.to_graph(params)), adapter)
    tokens, dim = encoder.latent_shape
    context = Context(context.spec_json, (2,), 2, tokens, dim, 8)
    generator = component("generators", "dit-diffusion", context, hidden=16, depth=1, heads=2, sample_steps=5)
    prompter = component("prompters", "dynamics", context, dim=8, hidden=8)
    with torch.no_grad():
        latents = codec.encode(params)[0]
    scale, env_scale = ChannelScale.fit(traj, 1), EnvironmentScale.fit(env_params)
    initial, raw = parameters(generator, prompter), []
    fit = fit_generator(
        generator,
        prompter,
        latents,
        torch.arange(8) % 4,
        traj,
        env_scale.normalize(env_params),
        scale,
        TRAINING,
        seed=0,
        # called after each optimizer step, while the modules still hold the trained weights
        advance=lambda n: raw.append(parameters(generator, prompter)),
    )
    normalized = env_scale.normalize(env_params)
    assert fit.validation == [] and fit.kept_step == TRAINING.steps
    return Trained(adapter, codec, generator, prompter, traj, scale, normalized, latents, fit.history, initial, raw)


def test_generator_training_leaves_the_ema_of_the_trained_weights(setup):
    """On return the generator and the prompter hold the exponential moving average (decay
    ``TRAINING.ema``, starting from the initial weights) of their weights after each step, not the
    last step's weights, and keep the latent statistics fitted before training."""
    assert len(setup.raw) == TRAINING.steps  # one advance per step
    assert [h["step"] for h in setup.history] == [TRAINING.steps]
    assert all(torch.isfinite(torch.tensor([h["diffusion"], h["aux"]])).all() for h in setup.history)

    expected = setup.initial
    for step in setup.raw:
        expected = {k: TRAINING.ema * e + (1 - TRAINING.ema) * step[k] for k, e in expected.items()}
    held = parameters(setup.generator, setup.prompter)
    assert held.keys() == expected.keys() and any(k.startswith("prompter.") for k in held)
    for k, v in held.items():
        torch.testing.assert_close(v, expected[k], msg=lambda m, k=k: f"{k} is not the EMA: {m}")

    last = setup.raw[-1]
    trained = [k for k in held if not torch.equal(last[k], setup.initial[k])]
    assert len(trained) > len(held) // 2  # most parameters moved during training ...
    for k in trained:  # ... and what is held is neither the last step nor the start
        assert not torch.allclose(held[k], last[k]), k
        assert not torch.allclose(held[k], setup.initial[k]), k

    # the buffers fitted on the latents survived loading the EMA copy's state
    torch.testing.assert_close(setup.generator.latent_mean, setup.latents.mean(dim=0))
    assert not setup.generator.training and not setup.prompter.training


def test_validation_keeps_the_best_validated_ema_weights_and_stops_after_patience(setup):
    """Issue 27: with validate_every, the weights kept are the EMA weights the validation scored
    lowest (not the last ones), and training stops after ``patience`` validations without gain."""
    generator, prompter = copy.deepcopy(setup.generator), copy.deepcopy(setup.prompter)
    scores, scored = iter([3.0, 1.0, 2.0, 4.0, 0.5]), []

    def validate(g: Generator, p: Prompter) -> float:
        scored.append(parameters(g, p))
        return next(scores)

    steps: list[int] = []
    fit = fit_generator(
        generator,
        prompter,
        setup.latents,
        torch.arange(8) % 4,
        setup.traj,
        setup.env_params,
        setup.scale,
        replace(TRAINING, validate_every=4, patience=2),
        seed=0,
        advance=steps.append,
        validate=validate,
    )
    # validations at 4, 8, 12, 16: the best is at 8; 12 and 16 do not beat it, so training stops at 16
    assert [v["step"] for v in fit.validation] == [4, 8, 12, 16] and fit.kept_step == 8
    assert [v["val_rmse"] for v in fit.validation] == [3.0, 1.0, 2.0, 4.0] and len(steps) == 16
    held = parameters(generator, prompter)
    assert all(torch.equal(held[k], scored[1][k]) for k in held)
    assert not all(torch.equal(held[k], scored[-1][k]) for k in held)


def test_validation_rmse_scores_generated_experts_by_rollout(setup):
    """The score is the rollout RMSE of the generated experts on the validation trajectories: the
    same number rollout_experts gives for what generate_experts returns."""
    observed, targets = setup.traj[:, 0, :3], setup.traj[:, 1:]
    score = validation_rmse(setup.codec, observed, setup.env_params, targets, setup.scale, DT, 2, seed=5)
    generated = generate_experts(
        setup.codec, setup.generator, setup.prompter, observed, setup.env_params, setup.scale, DT, 2, 5
    )
    expected = rollout_experts(setup.adapter, generated.params, targets, setup.scale, DT).rmse.mean()
    assert score(setup.generator, setup.prompter) == pytest.approx(float(expected))
    # one observed frame gives no residual: one candidate is drawn rather than an error
    one = validation_rmse(setup.codec, observed[:, :1], setup.env_params, targets, setup.scale, DT, 16, seed=5)
    assert math.isfinite(one(setup.generator, setup.prompter))


def test_generation_is_deterministic_and_picks_the_best_candidate(setup):
    s = setup
    observed = s.traj[:, 0, :4]
    a = generate_experts(s.codec, s.generator, s.prompter, observed, s.env_params, s.scale, DT, n_candidates=4, seed=3)
    b = generate_experts(s.codec, s.generator, s.prompter, observed, s.env_params, s.scale, DT, n_candidates=4, seed=3)
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])
        assert a.params[k].shape[0] == 4
    assert a.candidate_residuals.shape == (4, 4)
    assert torch.isfinite(a.candidate_residuals).all() and (a.rejected == 0).all()
    assert torch.equal(a.residual, a.candidate_residuals.min(dim=1).values)
    # the candidates differ, so picking matters, and the expert returned for each environment is the
    # one scoring that minimum on that environment's frames
    assert (a.candidate_residuals.amax(dim=1) > a.candidate_residuals.amin(dim=1)).all()
    torch.testing.assert_close(observation_residual(s.adapter, a.params, observed, s.scale, DT), a.residual)
    c = generate_experts(s.codec, s.generator, s.prompter, observed, s.env_params, s.scale, DT, n_candidates=4, seed=4)
    assert not torch.equal(a.candidate_residuals, c.candidate_residuals)


def test_non_finite_candidates_are_rejected(setup, monkeypatch):
    s = setup
    observed = s.traj[:, 0, :3]
    real_sample = s.generator.sample

    def half_broken(condition, rng):
        latents = real_sample(condition, rng)
        latents[::2] = float("nan")  # the first of each environment's two candidates
        return latents

    monkeypatch.setattr(s.generator, "sample", half_broken)
    out = generate_experts(s.codec, s.generator, s.prompter, observed, s.env_params, s.scale, DT, 2, seed=0)
    assert (out.rejected == 1).all() and all(torch.isfinite(v).all() for v in out.params.values())
    assert torch.isinf(out.candidate_residuals[:, 0]).all() and torch.isfinite(out.candidate_residuals[:, 1]).all()
    assert torch.equal(out.residual, out.candidate_residuals[:, 1])

    monkeypatch.setattr(s.generator, "sample", lambda c, rng: torch.full_like(real_sample(c, rng), float("nan")))
    with pytest.raises(WeightError, match="non-finite"):
        generate_experts(s.codec, s.generator, s.prompter, observed, s.env_params, s.scale, DT, 2, seed=0)
