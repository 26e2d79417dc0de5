"""The baseline components: exact round trips where there is nothing to learn, the flow's objective
and sampler against a known flow, retrieval in prompt space, the descriptor prompter for any
observation length, and save/load round trips of everything."""

import pytest
import torch

import weightspace as ws
from weightspace.components import Component, Context
from weightspace.errors import ConfigError
from weightspace.testing import check_component_round_trip
from weightspace_baselines.descriptor import DescriptorPrompter, moments
from weightspace_baselines.flat_vae import FlatVAE
from weightspace_baselines.flow_matching import FlowMatching
from weightspace_baselines.identity import IdentityEncoder
from weightspace_baselines.mlp_diffusion import MLPDiffusion
from weightspace_baselines.nearest import NearestGenerator


@pytest.fixture
def mlp():
    return ws.architecture("mlp-node", hidden_width=6)


def _context(adapter, state_shape=(2,), **extra):
    return Context(adapter.spec.to_json(), state_shape, 2, **extra)


def _nodes(adapter, n=3):
    return adapter.to_graph(adapter.init_params(n, seed=0)).nodes


def test_identity_encoder_is_lossless_and_pads_groups_to_one_width(mlp):
    encoder = IdentityEncoder.from_overrides({}, _context(mlp))
    nodes = _nodes(mlp)
    mean, logvar = encoder.encode(nodes)
    widest = max(t.shape[-1] for t in nodes)
    assert mean.shape == (3, sum(t.shape[1] for t in nodes), widest) == (3, *encoder.latent_shape)
    assert (logvar < -20).all() and not list(encoder.parameters())
    for a, b in zip(encoder.decode(mean), nodes):
        assert torch.equal(a, b)


def test_flat_vae_chunks_the_flattened_weights_and_decodes_every_group(mlp):
    vae = FlatVAE.from_overrides({"width": 16, "latent_dim": 4, "heads": 2, "depth": 1, "chunk": 7}, _context(mlp))
    nodes = _nodes(mlp)
    n_weights = sum(t[0].numel() for t in nodes)
    assert vae.latent_shape == (-(-n_weights // 7), 4)
    mean, logvar = vae.encode(nodes)
    assert mean.shape == (3, *vae.latent_shape) and logvar.shape == mean.shape
    assert [t.shape for t in vae.decode(mean)] == [t.shape for t in nodes]


def test_flow_matching_loss_vanishes_for_the_exact_velocity_and_the_sampler_follows_it(mlp):
    """A point mass at mu from a Gaussian source: the exact velocity is (mu - x_t) / (1 - t); any
    solver integrating it lands on mu, and the loss of a network predicting x1 - x0 exactly is 0."""
    context = _context(mlp, latent_tokens=3, latent_dim=2, condition_dim=4)
    flow = FlowMatching.from_overrides({"hidden": 16, "depth": 1, "heads": 2, "sample_steps": 8}, context)
    mu = torch.tensor([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])

    class Exact(torch.nn.Module):
        def forward(self, x, t, condition):
            s = (t / 1000).clamp(max=1 - 1e-4).view(-1, 1, 1)
            return (mu - x) / (1 - s)

    flow.denoiser = Exact()
    out = flow.sample(torch.zeros(5, 4), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, mu.expand(5, 3, 2), rtol=1e-4, atol=1e-4)
    assert float(flow.training_loss(mu.expand(6, 3, 2), torch.zeros(6, 4), torch.Generator().manual_seed(1))) < 1e-6


def test_flow_matching_samples_deterministically_and_fits_an_init_source(mlp):
    context = _context(mlp, latent_tokens=3, latent_dim=2, condition_dim=4)
    flow = FlowMatching.from_overrides({"hidden": 16, "depth": 1, "heads": 2, "source": "init"}, context)
    torch.nn.init.normal_(flow.denoiser.output.weight)
    source = 5 + 0.1 * torch.randn(200, 3, 2, generator=torch.Generator().manual_seed(0))
    flow.fit_scale(torch.randn(50, 3, 2))
    flow.fit_source(source)
    torch.testing.assert_close(flow.source_mean, flow.standardize(source).mean(dim=0))
    cond = torch.randn(2, 4)
    a, b = (flow.sample(cond, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a, b) and not torch.equal(a, flow.sample(cond, torch.Generator().manual_seed(4)))
    gaussian = FlowMatching.from_overrides({"hidden": 16, "depth": 1, "heads": 2}, context)
    gaussian.fit_source(source)  # a Gaussian source ignores the initializer's latents
    assert torch.equal(gaussian.source_mean, torch.zeros(3, 2))


def test_mlp_unet_starts_at_zero_and_trains(mlp):
    context = _context(mlp, latent_tokens=5, latent_dim=3, condition_dim=4)
    gen = MLPDiffusion.from_overrides({"hidden": 32, "levels": 3, "sample_steps": 4}, context)
    x, cond = torch.randn(6, 5, 3), torch.randn(6, 4)
    assert gen.denoiser(x, torch.tensor([1, 2, 3, 4, 5, 6]), cond).abs().max() == 0
    optimizer = torch.optim.Adam(gen.parameters(), lr=1e-2)
    losses = []
    for step in range(30):
        loss = gen.training_loss(x, cond, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < sum(losses[:5])
    assert gen.sample(cond, torch.Generator().manual_seed(0)).shape == (6, 5, 3)


def test_nearest_generator_returns_an_expert_of_the_nearest_environment(mlp, tmp_path):
    context = _context(mlp, latent_tokens=2, latent_dim=1, condition_dim=2)
    gen = NearestGenerator.from_overrides({}, context)
    with pytest.raises(ConfigError, match="trained"):
        gen.sample(torch.zeros(1, 2), torch.Generator())
    latents = torch.arange(12.0).view(6, 2, 1)
    group = torch.tensor([0, 0, 1, 1, 2, 2])
    conditions = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [5.0, 0.0], [0.0, 5.0], [0.0, 5.0]])
    gen.fit_memory(latents, conditions, group)
    gen.save(tmp_path / "g")
    gen = Component.load(tmp_path / "g")  # the memory's size comes from the saved file
    out = gen.sample(torch.tensor([[4.0, 1.0]]).repeat(20, 1), torch.Generator().manual_seed(0))
    picked = {int(v) for v in out[:, 0, 0]}
    assert picked == {4, 6}  # both experts of environment 1, and nothing else


@pytest.mark.parametrize("state_shape", [(2,), (2, 8, 8)])
def test_descriptor_prompter_accepts_any_observation_length(mlp, state_shape):
    prompter = DescriptorPrompter.from_overrides({"dim": 8, "hidden": 8}, _context(mlp, state_shape))
    for length in (1, 3):
        cond = prompter(torch.randn(3, length, *state_shape), torch.zeros(3, 2))
        assert cond.shape == (3, 8) and torch.isfinite(cond).all()


def test_moments_are_per_channel_statistics():
    frames = torch.stack([torch.full((2, 4, 4), 1.0), torch.full((2, 4, 4), 3.0)])[None]  # [1, L=2, C=2, 4, 4]
    frames[:, :, 1] *= -1
    m = moments(frames).view(2, 6)
    torch.testing.assert_close(m[:, 0], torch.tensor([2.0, -2.0]))  # mean
    torch.testing.assert_close(m[:, 1], torch.tensor([1.0, 1.0]))  # std
    torch.testing.assert_close(m[:, 4], torch.tensor([2.0, -2.0]))  # mean change between frames


def test_every_baseline_component_round_trips_through_a_folder(mlp, tmp_path):
    context = _context(mlp, latent_tokens=14, latent_dim=4, condition_dim=8)
    components = [
        FlatVAE.from_overrides({"width": 16, "latent_dim": 4, "heads": 2, "depth": 1}, context),
        IdentityEncoder.from_overrides({}, context),
        FlowMatching.from_overrides({"hidden": 16, "depth": 1, "heads": 2}, context),
        MLPDiffusion.from_overrides({"hidden": 16}, context),
        DescriptorPrompter.from_overrides({"dim": 8, "hidden": 8}, context),
    ]
    check_component_round_trip(components, tmp_path)
