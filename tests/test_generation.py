"""Generator training and gradient-free adaptation: determinism, candidate selection, rejection."""

import pytest
import torch

import weightspace as ws
from weightspace.components import Context
from weightspace.encoding import WeightCodec
from weightspace.errors import WeightError
from weightspace.generation import EnvironmentScale, GeneratorTraining, fit_generator, generate_experts
from weightspace.graph import GraphNormalizer
from weightspace.trajectories import ChannelScale
from weightspace_dynadiff.dit_diffusion import DiTDiffusion
from weightspace_dynadiff.graph_vae import GraphVAE
from weightspace_dynadiff.prompters import DynamicsPrompter


@pytest.fixture(scope="module")
def setup():
    adapter = ws.architecture("mlp-node", hidden_width=6)
    system = ws.system("lotka-volterra", n_b=2, n_d=2, n_seen=2, n_frames=11)
    traj = system.simulate(torch.arange(4), 3, seed=0).float()
    env_params = system.environments()[:4].float()
    params = adapter.init_params(8, seed=0)
    context = Context(adapter.spec.to_json(), (2,), 2)
    encoder = GraphVAE.from_overrides({"width": 16, "latent_dim": 4, "heads": 2}, context).eval()
    codec = WeightCodec(encoder, GraphNormalizer.fit(adapter.to_graph(params)), adapter)
    tokens, dim = encoder.latent_shape
    context = Context(context.spec_json, (2,), 2, tokens, dim, 8)
    generator = DiTDiffusion.from_overrides({"hidden": 16, "depth": 1, "heads": 2, "sample_steps": 5}, context)
    prompter = DynamicsPrompter.from_overrides({"dim": 8, "hidden": 8}, context)
    with torch.no_grad():
        latents = codec.encode(params)[0]
    scale, env_scale = ChannelScale.fit(traj, 1), EnvironmentScale.fit(env_params)
    history = fit_generator(
        generator,
        prompter,
        latents,
        torch.arange(8) % 4,
        traj,
        env_scale.normalize(env_params),
        scale,
        GeneratorTraining(steps=20, batch_size=8, max_frames=4),
        seed=0,
    )
    return adapter, codec, generator, prompter, traj, scale, env_scale.normalize(env_params), history


def test_generator_training_runs_and_keeps_ema_weights(setup):
    *_, history = setup
    assert history[-1]["step"] == 20 and all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in history)


def test_generation_is_deterministic_and_picks_the_best_candidate(setup):
    adapter, codec, generator, prompter, traj, scale, env_params, _ = setup
    observed = traj[:, 0, :4]
    a = generate_experts(codec, generator, prompter, observed, env_params, scale, 0.1, n_candidates=4, seed=3)
    b = generate_experts(codec, generator, prompter, observed, env_params, scale, 0.1, n_candidates=4, seed=3)
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])
        assert a.params[k].shape[0] == 4
    assert a.candidate_residuals.shape == (4, 4)
    assert torch.equal(a.residual, a.candidate_residuals.min(dim=1).values)
    c = generate_experts(codec, generator, prompter, observed, env_params, scale, 0.1, n_candidates=4, seed=4)
    assert not torch.equal(a.candidate_residuals, c.candidate_residuals)


def test_non_finite_candidates_are_rejected(setup, monkeypatch):
    adapter, codec, generator, prompter, traj, scale, env_params, _ = setup
    real_sample = generator.sample

    def half_broken(condition, rng):
        latents = real_sample(condition, rng)
        latents[::2] = float("nan")
        return latents

    monkeypatch.setattr(generator, "sample", half_broken)
    out = generate_experts(codec, generator, prompter, traj[:, 0, :3], env_params, scale, 0.1, 2, seed=0)
    assert (out.rejected == 1).all() and all(torch.isfinite(v).all() for v in out.params.values())

    monkeypatch.setattr(generator, "sample", lambda c, rng: torch.full_like(real_sample(c, rng), float("nan")))
    with pytest.raises(WeightError, match="non-finite"):
        generate_experts(codec, generator, prompter, traj[:, 0, :3], env_params, scale, 0.1, 2, seed=0)
