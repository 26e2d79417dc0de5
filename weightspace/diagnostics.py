"""Measurements of an adapter's contract: lossless graphs, permutation symmetry, batched evaluation.

``weightspace inspect`` reports these numbers and :mod:`weightspace.testing` asserts on them, so a
user and a test see the same quantities.
"""

from __future__ import annotations

import torch

from weightspace.architecture import ArchitectureAdapter
from weightspace.graph import Params, WeightGraph, permute_params, random_permutations


def _as_real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def max_abs_difference(a: Params, b: Params) -> float:
    """Largest absolute difference between two parameter dicts of the same keys and shapes."""
    return max(float((_as_real(a[k]) - _as_real(b[k])).abs().max()) if a[k].numel() else 0.0 for k in a)


def roundtrip_error(adapter: ArchitectureAdapter, params: Params) -> float:
    """max |params - from_graph(to_graph(params))|; 0.0 for a lossless adapter."""
    return max_abs_difference(params, adapter.from_graph(adapter.to_graph(params)))


def roundtrip_is_bitwise(adapter: ArchitectureAdapter, params: Params) -> bool:
    back = adapter.from_graph(adapter.to_graph(params))
    return all(torch.equal(params[k], back[k]) for k in params)


def permutation_error(
    adapter: ArchitectureAdapter, params: Params, x: torch.Tensor, generator: torch.Generator
) -> float:
    """Largest output change when every permutable set of hidden units is randomly reordered.

    ``x`` is a shared input ``[N, *state]``; the permutations differ between the B networks.
    """
    batch = next(iter(params.values())).shape[0]
    perms = random_permutations(adapter.spec, batch, generator)
    permuted = permute_params(adapter.spec, params, {k: v.to(x.device) for k, v in perms.items()})
    with torch.no_grad():
        return float((adapter.functional(params, x) - adapter.functional(permuted, x)).abs().max())


def functional_loop_error(adapter: ArchitectureAdapter, params: Params, x: torch.Tensor) -> float:
    """max |batched functional evaluation - a loop over real modules loaded with each parameter set|."""
    with torch.no_grad():
        batched = adapter.functional(params, x)
        looped = torch.stack([module(x) for module in adapter.modules(params, x.device)])
        return float((batched - looped).abs().max())


def architecture_report(
    adapter: ArchitectureAdapter,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    state_dict: Params | None = None,
) -> dict:
    """What ``weightspace inspect`` prints: sizes, node groups, round-trip and permutation errors.

    The network is ``state_dict`` when given (checked against the spec), else initialised from ``seed``.
    """
    generator = torch.Generator().manual_seed(seed)
    if state_dict is None:
        params = adapter.init_params(1, seed, device)
    else:
        params = WeightGraph.from_state_dict(adapter.spec, state_dict).to(device).to_params()
    x = adapter.example_input(4, generator).to(device)
    spec = adapter.spec
    with torch.no_grad():
        output = adapter.functional(params, x)
    return {
        "architecture": adapter.name,
        "config": spec.config,
        "prediction": adapter.prediction.value,
        "n_parameters": spec.n_params,
        "n_nodes": spec.n_nodes,
        "node_groups": [
            {"name": g.name, "n_nodes": g.n_nodes, "feat_dim": g.feat_dim, "permutation": g.permutation}
            for g in spec.groups
        ],
        "permutations": [{"name": p.name, "size": p.size} for p in spec.permutations],
        "roundtrip_max_abs_error": roundtrip_error(adapter, params),
        "roundtrip_bitwise": roundtrip_is_bitwise(adapter, params),
        "permutation_max_abs_error": permutation_error(adapter, params, x, generator),
        "output_max_abs": float(output.abs().max()),
        "seed": seed,
        "device": str(device),
    }
