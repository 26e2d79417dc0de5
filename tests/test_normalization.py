import pytest
import torch

from weightspace.errors import WeightError
from weightspace.graph import GraphNormalizer, WeightGraph, apply_permutation, random_permutations


def test_normalize_is_invertible_and_standardizes(toy_graph):
    norm = GraphNormalizer.fit(toy_graph)
    z = norm.normalize(toy_graph)
    for g, t in z.items():
        for seg in torch.split(t, list(g.widths), dim=2):
            assert abs(float(seg.mean())) < 1e-5
            assert abs(float(seg.std(correction=0)) - 1) < 1e-4
    back = norm.denormalize(z)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(back.nodes, toy_graph.nodes))


def test_zero_variance_parameters_are_safe(toy_spec, toy_params):
    toy_params["a.bias"] = torch.full_like(toy_params["a.bias"], 0.25)
    graph = WeightGraph.from_params(toy_spec, toy_params)
    norm = GraphNormalizer.fit(graph)
    z = norm.normalize(graph)
    assert all(torch.isfinite(t).all() for t in z.nodes)
    assert torch.equal(z["a"][..., 3], torch.zeros(3, 4))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(norm.denormalize(z).nodes, graph.nodes))


def test_normalization_commutes_with_permutations(toy_graph):
    norm = GraphNormalizer.fit(toy_graph)
    perms = random_permutations(toy_graph.spec, 3, torch.Generator().manual_seed(0))
    a = norm.normalize(apply_permutation(toy_graph, perms))
    b = apply_permutation(norm.normalize(toy_graph), perms)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a.nodes, b.nodes))


def test_state_dict_round_trip(toy_graph):
    norm = GraphNormalizer.fit(toy_graph)
    again = GraphNormalizer.from_state_dict(toy_graph.spec, norm.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(again.normalize(toy_graph).nodes, norm.normalize(toy_graph).nodes))


def test_network_centre_subtracts_the_mean_network_and_round_trips(toy_graph):
    norm = GraphNormalizer.fit(toy_graph, centre="network")
    z = norm.normalize(toy_graph)
    for t in z.nodes:
        assert torch.allclose(t.mean(dim=0), torch.zeros_like(t[0]), atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(norm.denormalize(z).nodes, toy_graph.nodes))
    again = GraphNormalizer.from_state_dict(toy_graph.spec, norm.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(again.normalize(toy_graph).nodes, z.nodes))
    assert (
        GraphNormalizer.from_state_dict(toy_graph.spec, GraphNormalizer.fit(toy_graph).state_dict()).reference is None
    )


def test_network_centre_keeps_what_distinguishes_networks_at_unit_scale(toy_spec, toy_params):
    # networks that share a base and differ by 1% of its scale: pooled statistics leave the
    # differences at about 0.01, network centring brings them to unit scale
    g = torch.Generator().manual_seed(3)
    zoo = {k: v[:1] + 0.01 * torch.randn(20, *v.shape[1:], generator=g, dtype=v.dtype) for k, v in toy_params.items()}
    graph = WeightGraph.from_params(toy_spec, zoo)
    pooled = GraphNormalizer.fit(graph).normalize(graph)
    centred = GraphNormalizer.fit(graph, centre="network").normalize(graph)
    assert float(pooled["a"].std(dim=0).mean()) < 0.05
    assert 0.5 < float(centred["a"].std(dim=0).mean()) < 1.5


def test_unknown_centre_is_named(toy_graph):
    with pytest.raises(WeightError, match="unknown normalization centre 'median'"):
        GraphNormalizer.fit(toy_graph, centre="median")
