import torch

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
