"""Per-layer normalization of weight graphs, fitted on a zoo.

Weights of different layers live on very different scales (spectral weights, biases, gates), so
generative models train on normalized graphs. Statistics are one mean and one standard deviation
per parameter inside each node group, pooled over networks and nodes: pooling over nodes keeps the
normalization exactly equivariant to hidden-unit permutations. Parameters that never vary in the zoo
(zero variance) get a unit scale, so normalizing is always invertible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightspace.errors import WeightError
from weightspace.graph.spec import GraphSpec
from weightspace.graph.weight_graph import WeightGraph


@dataclass(frozen=True)
class GraphNormalizer:
    """Fitted statistics: per node group, one ``(mean, std)`` per member parameter."""

    spec: GraphSpec
    mean: tuple[torch.Tensor, ...]
    std: tuple[torch.Tensor, ...]

    @classmethod
    def fit(cls, graph: WeightGraph, eps: float = 1e-8) -> GraphNormalizer:
        means, stds = [], []
        for g, t in graph.items():
            segments = torch.split(t.detach().double(), list(g.widths), dim=2)
            m = torch.stack([s.mean() for s in segments])
            # population std over everything pooled; a single value has std 0
            s = torch.stack([seg.std(correction=0) for seg in segments])
            s = torch.where(s > eps, s, torch.ones_like(s))
            means.append(m.float())
            stds.append(s.float())
        return cls(graph.spec, tuple(means), tuple(stds))

    def _columns(self, i: int, stats: tuple[torch.Tensor, ...], like: torch.Tensor) -> torch.Tensor:
        widths = torch.tensor(self.spec.groups[i].widths, device=stats[i].device)
        return stats[i].repeat_interleave(widths).to(like)

    def normalize(self, graph: WeightGraph) -> WeightGraph:
        self._check(graph)
        return WeightGraph(
            graph.spec,
            tuple(
                (t - self._columns(i, self.mean, t)) / self._columns(i, self.std, t) for i, t in enumerate(graph.nodes)
            ),
        )

    def denormalize(self, graph: WeightGraph) -> WeightGraph:
        self._check(graph)
        return WeightGraph(
            graph.spec,
            tuple(
                t * self._columns(i, self.std, t) + self._columns(i, self.mean, t) for i, t in enumerate(graph.nodes)
            ),
        )

    def _check(self, graph: WeightGraph) -> None:
        if graph.spec != self.spec:
            raise WeightError(
                f"normalizer was fitted on {self.spec.architecture} graphs of another spec than this "
                f"{graph.spec.architecture} graph"
            )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors for safetensors storage (the spec is stored separately as JSON)."""
        out = {}
        for g, m, s in zip(self.spec.groups, self.mean, self.std):
            out[f"mean/{g.name}"] = m
            out[f"std/{g.name}"] = s
        return out

    @classmethod
    def from_state_dict(cls, spec: GraphSpec, state: dict[str, torch.Tensor]) -> GraphNormalizer:
        try:
            return cls(
                spec,
                tuple(state[f"mean/{g.name}"] for g in spec.groups),
                tuple(state[f"std/{g.name}"] for g in spec.groups),
            )
        except KeyError as exc:
            raise WeightError(f"normalizer state lacks {exc.args[0]!r}") from None
