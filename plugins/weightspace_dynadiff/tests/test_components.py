"""The DynaDiff components: save/load round trips, permutation equivariance of the graph VAE,
deterministic sampling, the mean head, prompters for any observation length. The generic blocks they
are built from (:mod:`weightspace.nn`) are tested in the core suite (``tests/test_nn.py``)."""

import pytest
import torch

import weightspace as ws
from weightspace.components import Component, Context
from weightspace.graph import GraphNormalizer
from weightspace.testing import check_component_round_trip
from weightspace_dynadiff.dit_diffusion import DiTDiffusion
from weightspace_dynadiff.graph_vae import GraphVAE
from weightspace_dynadiff.prompters import DynamicsPrompter, OraclePrompter, StatsPrompter, shell_spectra


def _context(adapter, state_shape, **extra):
    return Context(adapter.spec.to_json(), state_shape, 2, **extra)


@pytest.fixture
def mlp():
    return ws.architecture("mlp-node", hidden_width=6)


def test_graph_vae_tokens_are_permutation_equivariant(mlp):
    """Reordering the nodes (tokens) of a group reorders their latents and decoded nodes the same way.

    (Permuting hidden units also reorders the next layer's incoming-weight features, which the
    per-group projections see; the robustness to that is measured on trained zoos, not exact.)"""
    vae = GraphVAE.from_overrides({"width": 16, "latent_dim": 4, "heads": 2}, _context(mlp, (2,))).eval()
    nodes = mlp.to_graph(mlp.init_params(3, seed=0)).nodes
    order = torch.randperm(nodes[1].shape[1], generator=torch.Generator().manual_seed(1))
    shuffled = (nodes[0], nodes[1][:, order], *nodes[2:])
    with torch.no_grad():
        mean, _ = vae.encode(nodes)
        mean_s, _ = vae.encode(shuffled)
        sizes = [t.shape[1] for t in nodes]
        start = sizes[0]
        torch.testing.assert_close(mean_s[:, start : start + sizes[1]], mean[:, start : start + sizes[1]][:, order])
        decoded, decoded_s = vae.decode(mean), vae.decode(mean_s)
    torch.testing.assert_close(decoded_s[1], decoded[1][:, order], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(decoded_s[2], decoded[2], rtol=1e-4, atol=1e-5)


def test_components_round_trip_through_a_folder(tmp_path, mlp):
    context = _context(mlp, (2,), latent_tokens=14, latent_dim=4, condition_dim=8)
    components = [
        GraphVAE.from_overrides({"width": 16, "latent_dim": 4, "heads": 2}, context),
        DiTDiffusion.from_overrides({"hidden": 16, "depth": 1, "heads": 2}, context),
        DiTDiffusion.from_overrides({"hidden": 16, "depth": 1, "heads": 2, "mean_head": 8}, context),
        DynamicsPrompter.from_overrides({"dim": 8, "hidden": 8}, context),
        StatsPrompter.from_overrides({"dim": 8, "hidden": 8}, context),
        OraclePrompter.from_overrides({"dim": 8, "hidden": 8}, context),
    ]
    check_component_round_trip(components, tmp_path)


def test_dit_diffusion_samples_deterministically(mlp):
    context = _context(mlp, (2,), latent_tokens=5, latent_dim=3, condition_dim=4)
    gen = DiTDiffusion.from_overrides({"hidden": 16, "depth": 2, "heads": 2, "sample_steps": 10}, context)
    cond = torch.randn(2, 4)
    torch.nn.init.normal_(gen.denoiser.output.weight)  # make the sampler depend on the network
    a = gen.sample(cond, torch.Generator().manual_seed(7))
    b = gen.sample(cond, torch.Generator().manual_seed(7))
    c = gen.sample(cond, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def _two_clusters(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents ``[n, 5, 3]`` of two environments at +-centre with spread 0.1, and their conditions."""
    centre = torch.linspace(-1, 1, 15).view(5, 3)
    group = torch.arange(n) % 2
    sign = (2 * group - 1).float().view(-1, 1, 1)
    latents = sign * centre + 0.1 * torch.randn(n, 5, 3, generator=generator)
    conditions = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])[group]
    return latents, conditions, centre


def test_mean_head_samples_the_prompted_environment(mlp):
    """With a mean head, a briefly trained generator puts each condition's samples at its own
    environment's latents: the regression reads the condition with the full signal."""
    torch.manual_seed(0)
    context = _context(mlp, (2,), latent_tokens=5, latent_dim=3, condition_dim=4)
    gen = DiTDiffusion.from_overrides(
        {"hidden": 16, "depth": 1, "heads": 2, "sample_steps": 10, "mean_head": 32}, context
    )
    rng = torch.Generator().manual_seed(1)
    latents, conditions, centre = _two_clusters(64, rng)
    gen.fit_scale(latents)
    optimizer = torch.optim.Adam(gen.parameters(), lr=3e-3)
    for _ in range(300):
        loss = gen.training_loss(latents, conditions, rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        samples = gen.sample(conditions[:2].repeat(8, 1), torch.Generator().manual_seed(2))
    error = (samples - torch.stack([-centre, centre]).repeat(8, 1, 1)).abs().mean()
    assert error < 0.3, f"samples are {error:.3f} from their environment's centre (spread 1)"


@pytest.mark.parametrize(
    ("state_shape", "spectrum"), [((2,), "modes"), ((2, 16, 16), "modes"), ((2, 16, 16), "shells")]
)
def test_dynamics_prompter_accepts_any_observation_length(mlp, state_shape, spectrum):
    overrides = {"dim": 8, "hidden": 8, "modes": 3, "spectrum": spectrum}
    prompter = DynamicsPrompter.from_overrides(overrides, _context(mlp, state_shape))
    for length in (1, 2, 5):
        cond = prompter(torch.randn(3, length, *state_shape), torch.zeros(3, 2))
        assert cond.shape == (3, 8) and torch.isfinite(cond).all()
    loss = prompter.aux_loss(cond, torch.zeros(3, 2))
    loss.backward()
    assert prompter.aux.weight.grad is not None


@pytest.mark.parametrize("state_shape", [(2,), (2, 8, 8)])
def test_stats_prompter_lacks_the_implicit_branch_and_accepts_any_observation_length(mlp, state_shape):
    prompter = StatsPrompter.from_overrides({"dim": 8, "hidden": 8}, _context(mlp, state_shape))
    assert not hasattr(prompter, "implicit")
    for length in (1, 3):
        cond = prompter(torch.randn(3, length, *state_shape), torch.zeros(3, 2))
        assert cond.shape == (3, 8) and torch.isfinite(cond).all()


def test_shell_spectra_ignore_shifts_and_quarter_turns_but_not_the_dynamics():
    """Shell spectra describe a field's dynamics, not where its features sit: shifting or turning
    every frame leaves them unchanged, while a different motion (here reversed time) changes them."""
    frames = torch.randn(2, 3, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    features = shell_spectra(frames, 5)
    assert features.shape == (2, 3, 2 * 2 * 2 * 5 * 2)
    for moved in (frames.roll((3, -5), dims=(-2, -1)), frames.rot90(1, dims=(-2, -1))):
        torch.testing.assert_close(shell_spectra(moved, 5), features, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(shell_spectra(frames.flip(1), 5)[:, 0], features[:, 0], atol=1e-3)


def test_dynamics_prompter_rejects_an_unknown_spectrum(mlp):
    with pytest.raises(ValueError, match="spectrum"):
        DynamicsPrompter.from_overrides({"spectrum": "wavelets"}, _context(mlp, (2, 16, 16)))


def test_graph_normalizer_of_a_zoo_is_invertible(mlp):
    params = mlp.init_params(4, seed=2)
    graph = mlp.to_graph(params)
    norm = GraphNormalizer.fit(graph)
    for a, b in zip(norm.denormalize(norm.normalize(graph)).nodes, graph.nodes):
        torch.testing.assert_close(a, b)


def test_dynamics_prompter_scales_ode_state_changes_by_their_training_spread(mlp, tmp_path):
    prompter = DynamicsPrompter.from_overrides({"dim": 8, "hidden": 8}, _context(mlp, (2,)))
    steps = torch.tensor([0.01, 0.2]) * torch.randn(3, 4, 30, 2, generator=torch.Generator().manual_seed(0))
    trajectories = steps.cumsum(dim=2)
    prompter.fit_scale(trajectories)
    torch.testing.assert_close(prompter.change_std, torch.tensor([0.01, 0.2]), rtol=0.15, atol=0)
    frames = trajectories[:2, 0, :5]
    changes = prompter._sequence(frames)[..., 2:]
    assert changes[:, :-1].std() > 0.5 and torch.equal(changes[:, -1], torch.zeros(2, 2))
    prompter.save(tmp_path / "p")
    again = Component.load(tmp_path / "p")
    assert torch.equal(again.change_std, prompter.change_std)
    field = DynamicsPrompter.from_overrides({"dim": 8, "hidden": 8, "modes": 3}, _context(mlp, (1, 8, 8)))
    field.fit_scale(torch.randn(2, 2, 5, 1, 8, 8))  # fields have no state changes to scale
    assert "change_std" not in field.state_dict()
