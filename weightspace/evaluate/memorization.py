"""Does a generator create experts or copy them? Nearest-neighbour distances in function space.

Two networks are compared by what they compute: the normalized mean squared difference of their
outputs on shared probe states (the zoo's training states, outputs in units of the per-channel
std), as the encoder's function loss does. For each generated expert we take the distance to its
nearest zoo expert, and compare it with the zoo's own nearest-neighbour distances: the distance of
each zoo expert to the nearest other expert, and to the nearest expert of another environment (the
fair yardstick for an unseen environment, since a domain-adaptive zoo holds near-twins of each
environment). A ratio near or below 1 says generated experts sit as close to the zoo as zoo
experts sit to each other: they could be copies.
"""

from __future__ import annotations

import statistics

import torch

from weightspace.architecture import ArchitectureAdapter
from weightspace.data.trajectories import ChannelScale
from weightspace.graph import Params


def function_outputs(
    adapter: ArchitectureAdapter, params: Params, probes: torch.Tensor, scale: ChannelScale, batch: int = 16
) -> torch.Tensor:
    """Each network's outputs on ``probes`` ``[P, *state]``, flattened and in per-channel std units: ``[B, D]``."""
    n = next(iter(params.values())).shape[0]
    std = scale.std.to(probes.device)
    parts = []
    with torch.no_grad():
        for lo in range(0, n, batch):
            out = adapter.functional({k: v[lo : lo + batch] for k, v in params.items()}, probes)
            parts.append((out / std).flatten(1))
    return torch.cat(parts)


def _nearest(a: torch.Tensor, b: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Normalized MSE from each row of ``a`` to its nearest row of ``b`` (pairs where ``exclude`` holds skipped)."""
    distance = torch.cdist(a.double(), b.double()).pow(2) / a.shape[1]
    if exclude is not None:
        distance = distance.masked_fill(exclude, torch.inf)
    return distance.min(dim=1).values.float()


def memorization(
    adapter: ArchitectureAdapter,
    generated: Params,
    zoo_params: Params,
    zoo_env: torch.Tensor,
    probes: torch.Tensor,
    scale: ChannelScale,
) -> dict[str, float]:
    """Medians of nearest-neighbour function distances and their ratios (see the module docstring).

    ``zoo_env`` ``[N]`` names each zoo expert's environment."""
    gen = function_outputs(adapter, generated, probes, scale)
    zoo = function_outputs(adapter, zoo_params, probes, scale)
    to_zoo = _nearest(gen, zoo)
    eye = torch.eye(len(zoo), dtype=torch.bool)
    within = _nearest(zoo, zoo, eye)
    across = _nearest(zoo, zoo, zoo_env[:, None] == zoo_env[None, :])
    m = {name: statistics.median(v.tolist()) for name, v in (("gen", to_zoo), ("zoo", within), ("other", across))}
    return {
        "nn_distance": m["gen"],
        "zoo_nn_distance": m["zoo"],
        "zoo_nn_other_env_distance": m["other"],
        "ratio": m["gen"] / max(m["zoo"], 1e-12),
        "ratio_other_env": m["gen"] / max(m["other"], 1e-12),
    }
