import json

import pytest
import torch

from weightspace.errors import PluginError, StorageError, WeightError
from weightspace.graph import (
    GraphSpec,
    LayoutBuilder,
    Member,
    WeightGraph,
    apply_permutation,
    permute_params,
    random_permutations,
)


def test_spec_derives_node_counts_and_feature_widths(toy_spec):
    a, b = toy_spec.groups
    assert (a.n_nodes, a.feat_dim, a.widths) == (4, 3 + 1 + 3, (3, 1, 3))
    # complex (2, 4, 2) weight: 4 * 2 entries, real and imaginary parts each -> 16, plus the bias
    assert (b.n_nodes, b.feat_dim, b.widths) == (2, 17, (16, 1))
    assert toy_spec.permutation("hidden").size == 4
    assert toy_spec.n_params == 12 + 4 + 12 + 32 + 2


def test_roundtrip_is_bitwise(toy_spec, toy_params, toy_graph):
    back = toy_graph.to_params()
    assert list(back) == [p.name for p in toy_spec.params]
    for name, value in toy_params.items():
        assert torch.equal(back[name], value)
        assert back[name].dtype == value.dtype


def test_node_features_hold_incoming_weights_bias_and_skip(toy_params, toy_graph):
    node = toy_graph["a"][1, 2]  # network 1, hidden unit 2
    expected = torch.cat([toy_params["a.weight"][1, 2], toy_params["a.bias"][1, 2:3], toy_params["a.skip"][1, 2]])
    assert torch.equal(node, expected)
    out = toy_graph["b"][0, 1]
    w = torch.view_as_real(toy_params["b.weight"][0, 1]).reshape(-1)
    assert torch.equal(out[:16], w)


def test_stack_unbind_select(toy_spec, toy_graph):
    parts = toy_graph.unbind()
    assert [len(p) for p in parts] == [1, 1, 1]
    again = WeightGraph.stack(parts)
    assert all(torch.equal(a, b) for a, b in zip(again.nodes, toy_graph.nodes))
    assert len(toy_graph.select([0, 2])) == 2
    assert toy_graph.flat().shape == (3, toy_spec.n_params)
    singles = [WeightGraph.from_state_dict(toy_spec, sd) for sd in toy_graph.to_state_dicts()]
    assert all(torch.equal(a, b) for a, b in zip(WeightGraph.stack(singles).nodes, toy_graph.nodes))


def test_spec_json_round_trip(toy_spec):
    again = GraphSpec.from_json(toy_spec.to_json())
    assert again == toy_spec
    assert json.loads(toy_spec.to_json())["config"] == {"width": 4}
    with pytest.raises(StorageError, match="not a valid graph spec"):
        GraphSpec.from_json('{"architecture": "x"}')


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("a.bias"), "missing parameter\\(s\\) a.bias for toy"),
        (lambda p: p.update(extra=torch.zeros(3, 1)), "unexpected parameter\\(s\\) extra"),
        (
            lambda p: p.update({"a.weight": torch.zeros(3, 5, 3)}),
            r"'a.weight' has shape \(3, 5, 3\), expected \[B, 4, 3\]",
        ),
        (lambda p: p.update({"a.bias": torch.zeros(3, 4, dtype=torch.float64)}), "'a.bias' has dtype torch.float64"),
        (lambda p: p.update({"a.bias": torch.full((3, 4), float("nan"))}), "'a.bias' contains NaN"),
        (lambda p: p.update({"a.bias": torch.zeros(2, 4)}), "'a.bias' has batch size 2"),
    ],
)
def test_bad_params_raise_one_clear_error(toy_spec, toy_params, mutate, message):
    mutate(toy_params)
    with pytest.raises(WeightError, match=message):
        WeightGraph.from_params(toy_spec, toy_params)


def test_graph_with_wrong_node_shape_is_rejected(toy_spec, toy_graph):
    with pytest.raises(WeightError, match=r"node group 'a' has shape \(3, 5, 7\), expected \[B, 4, 7\]"):
        WeightGraph(toy_spec, (torch.zeros(3, 5, 7), toy_graph.nodes[1]))


def _inconsistent(build):
    params = {"l.weight": torch.zeros(4, 3), "l.bias": torch.zeros(4), "m.weight": torch.zeros(2, 4)}
    b = LayoutBuilder()
    build(b)
    return GraphSpec.from_layout("bad", {}, params, b.build())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda b: b.dense("l", "l", permutation=None, inputs=None), "parameters in no node group: m.weight"),
        (
            lambda b: (b.group("l", (Member("l.weight"), Member("m.weight"))), b.group("b", (Member("l.bias"),))),
            "disagree on the node count",
        ),
        (
            lambda b: (b.dense("l", "l", permutation=None, inputs=None), b.group("m", (Member("l.bias"),))),
            "'l.bias' is in groups 'l' and 'm'",
        ),
        (lambda b: b.group("l", (Member("nope"),)), "unknown parameter 'nope'"),
        (
            lambda b: (b.dense("l", "l", permutation="h", inputs=None), b.group("m", (Member("m.weight"),), "h")),
            "must permute exactly one node count",
        ),
        (
            lambda b: (
                b.group("l", (Member("l.weight"), Member("l.bias")), "h"),
                b.moves("h", "m.weight", 0),
                b.group("m", (Member("m.weight"),)),
            ),
            "overruns axis 0 of 'm.weight'",
        ),
        (
            lambda b: (
                b.dense("l", "l", permutation="h", inputs=None),
                b.dense("m", "m", permutation=None, inputs="h", bias=False),
            ),
            None,
        ),
    ],
)
def test_inconsistent_layouts_are_caught(build, message):
    if message is None:  # a consistent layout, for contrast
        _inconsistent(build)
        return
    with pytest.raises(PluginError, match=message):
        _inconsistent(build)


def test_permutation_reorders_node_rows_and_consumer_columns(toy_spec, toy_params, toy_graph):
    perm = torch.tensor([2, 0, 3, 1])
    permuted = apply_permutation(toy_graph, {"hidden": perm})
    assert torch.equal(permuted["a"], toy_graph["a"][:, perm])
    w = permuted.to_params()["b.weight"]
    assert torch.equal(w, toy_params["b.weight"][:, :, perm])
    assert torch.equal(permuted.to_params()["b.bias"], toy_params["b.bias"])


def test_per_network_permutations_and_inverse(toy_spec, toy_params):
    perms = random_permutations(toy_spec, 3, torch.Generator().manual_seed(1))
    moved = permute_params(toy_spec, toy_params, perms)
    back = permute_params(toy_spec, moved, {k: v.argsort(dim=1) for k, v in perms.items()})
    assert all(torch.equal(back[k], toy_params[k]) for k in toy_params)


def test_sliced_permutation_moves_only_its_slice():
    # a concatenated input: columns 0..1 come from one path, 2..4 from another
    params = {"p.weight": torch.zeros(2, 1), "q.weight": torch.zeros(3, 1), "r.weight": torch.arange(10.0).view(2, 5)}
    b = LayoutBuilder()
    b.dense("p", "p", permutation="p", inputs=None, bias=False)
    b.dense("q", "q", permutation="q", inputs=None, bias=False)
    b.group("r", (Member("r.weight"),))
    b.moves("p", "r.weight", 1, 0)
    b.moves("q", "r.weight", 1, 2)
    spec = GraphSpec.from_layout("cat", {}, params, b.build())
    batched = {k: v.unsqueeze(0) for k, v in params.items()}
    out = permute_params(spec, batched, {"q": torch.tensor([2, 0, 1])})
    assert out["r.weight"][0].tolist() == [[0, 1, 4, 2, 3], [5, 6, 9, 7, 8]]


def test_bad_permutations_are_rejected(toy_graph):
    with pytest.raises(WeightError, match="not a permutation"):
        apply_permutation(toy_graph, {"hidden": torch.tensor([0, 0, 1, 2])})
    with pytest.raises(WeightError, match=r"has shape \(3,\), expected \[4\] or \[3, 4\]"):
        apply_permutation(toy_graph, {"hidden": torch.tensor([0, 1, 2])})
    with pytest.raises(PluginError, match="unknown permutation 'nope'; toy has: hidden"):
        apply_permutation(toy_graph, {"nope": torch.tensor([0])})


def test_a_fraction_of_units_is_shuffled_and_each_of_them_moves(toy_spec):
    perms = random_permutations(toy_spec, 5, torch.Generator().manual_seed(0), fraction=0.5)["hidden"]
    moved = (perms != torch.arange(4)).sum(dim=1)
    assert moved.tolist() == [2] * 5
    assert torch.equal(perms.sort(dim=1).values, torch.arange(4).expand(5, -1))
    with pytest.raises(WeightError, match=r"fraction of hidden units to permute must be in \(0, 1\], got 0"):
        random_permutations(toy_spec, 1, torch.Generator(), fraction=0)
