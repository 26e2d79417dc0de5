"""Encoder training: the function loss decreases, and beats lambda = 0 in function space on held-out experts."""

import torch

import weightspace as ws
from weightspace.components import Context
from weightspace.data.trajectories import ChannelScale
from weightspace.graph import GraphNormalizer, align_to
from weightspace.pipeline.encoding import (
    EncoderTraining,
    WeightCodec,
    fit_encoder,
    fit_normalizer,
    function_error,
    nearest_function_error,
    permutation_sensitivity,
    reconstruction_error,
    split_holdout,
)
from weightspace_dynadiff.graph_vae import GraphVAE


def _toy_zoo(n=40, spread=0.3):
    """Experts of a small vector field: one base plus perturbations, as a domain-adaptive zoo has."""
    adapter = ws.architecture("mlp-node", hidden_width=8)
    base = adapter.init_params(1, seed=0)
    g = torch.Generator().manual_seed(1)
    params = {k: v + spread * v.std() * torch.randn(n, *v.shape[1:], generator=g) for k, v in base.items()}
    states = 1 + 2 * torch.rand(512, 2, generator=g)
    return adapter, params, states, ChannelScale.fit(states[None], 1)


def _train(adapter, params, states, scale, function_weight, steps=200):
    train, held = split_holdout(len(params["layers.0.weight"]), 0.2, seed=0)
    p_train = {k: v[train] for k, v in params.items()}
    p_held = {k: v[held] for k, v in params.items()}
    context = Context(adapter.spec.to_json(), (2,), 2)
    torch.manual_seed(0)
    encoder = GraphVAE.from_overrides(
        {"width": 32, "latent_dim": 4, "heads": 2, "function_weight": function_weight}, context
    )
    codec = WeightCodec(encoder, GraphNormalizer.fit(adapter.to_graph(p_train)), adapter)
    history = fit_encoder(codec, p_train, states, scale, EncoderTraining(steps=steps, lr=2e-3), seed=0)
    return history, reconstruction_error(codec, p_held, states, scale)


def test_function_loss_decreases_and_beats_no_function_loss():
    adapter, params, states, scale = _toy_zoo()
    history, with_function = _train(adapter, params, states, scale, 1.0)
    assert history[-1]["function"] < 0.5 * history[0]["function"]
    _, without = _train(adapter, params, states, scale, 0.0)
    assert with_function["function_error"] < without["function_error"]


def test_network_centred_codec_encodes_permuted_experts_alike():
    """With the zoo's mean network as reference, experts are aligned before encoding: a hidden-unit
    permutation of an expert (the same function) gets the same latent."""
    adapter, params, _, _ = _toy_zoo(spread=0.1)
    context = Context(adapter.spec.to_json(), (2,), 2)
    encoder = GraphVAE.from_overrides({"width": 16, "latent_dim": 4, "heads": 2}, context).eval()
    codec = WeightCodec(encoder, GraphNormalizer.fit(adapter.to_graph(params), centre="network"), adapter)
    perms = ws.graph.random_permutations(adapter.spec, len(params["layers.0.weight"]), torch.Generator().manual_seed(2))
    with torch.no_grad():
        original = codec.encode(params)[0]
        permuted = codec.encode(ws.graph.permute_params(adapter.spec, params, perms))[0]
    assert torch.allclose(original, permuted, atol=1e-5)


def test_permuting_a_tenth_of_hidden_units_changes_decoded_functions_little_once_aligned():
    adapter, params, states, scale = _toy_zoo(n=12, spread=0.1)
    context = Context(adapter.spec.to_json(), (2,), 2)
    torch.manual_seed(0)
    encoder = GraphVAE.from_overrides({"width": 16, "latent_dim": 4, "heads": 2}, context).eval()
    graph = adapter.to_graph(params)
    aligned = WeightCodec(encoder, GraphNormalizer.fit(graph, centre="network"), adapter)
    unaligned = WeightCodec(encoder, GraphNormalizer.fit(graph), adapter)
    change = permutation_sensitivity(aligned, params, states, scale, 0.1, seed=0)
    assert change < 1e-8
    assert permutation_sensitivity(unaligned, params, states, scale, 0.1, seed=0) > 1e3 * max(change, 1e-12)


def test_network_centred_normalizer_brings_a_shuffled_zoo_into_one_order():
    """Experts in random hidden-unit orders (as a randomly initialized zoo has) get a reference
    that is one of their functions' orders, not an average of unrelated units."""
    adapter, params, _, _ = _toy_zoo(n=10, spread=0.05)
    perms = ws.graph.random_permutations(adapter.spec, 10, torch.Generator().manual_seed(4))
    shuffled = ws.graph.permute_params(adapter.spec, params, perms)
    in_order = fit_normalizer(adapter, params, "network").reference_params()
    realigned = fit_normalizer(adapter, shuffled, "network").reference_params()
    naive = GraphNormalizer.fit(adapter.to_graph(shuffled), centre="network").reference_params()
    # the realigned reference is the in-order one up to a permutation of its own units
    matched = ws.graph.permute_params(adapter.spec, realigned, align_to(adapter.spec, realigned, in_order))
    assert all(torch.allclose(matched[k], in_order[k], atol=1e-5) for k in in_order)
    assert (naive["layers.0.weight"] - in_order["layers.0.weight"]).abs().max() > 0.1


def test_nearest_function_error_is_the_smallest_pairwise_error():
    """Checked against every pair, with a pool larger than one evaluation chunk (16 networks)."""
    adapter, params, states, scale = _toy_zoo(n=40)
    held = {k: v[:3] for k, v in params.items()}
    pool = {k: v[3:] for k, v in params.items()}
    nearest = nearest_function_error(adapter, held, pool, states[:64], scale)
    for i in range(3):
        one = {k: v[i : i + 1].expand(37, *v.shape[1:]) for k, v in held.items()}
        assert torch.isclose(nearest[i], function_error(adapter, pool, one, states[:64], scale).min(), rtol=1e-4)
    with_itself = {k: torch.cat([pool[k], held[k][1:2]]) for k in pool}
    assert nearest_function_error(adapter, held, with_itself, states[:64], scale)[1] == 0
