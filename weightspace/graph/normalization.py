"""Per-layer normalization of weight graphs, fitted on a zoo.

Weights of different layers live on very different scales (spectral weights, biases, gates), so
generative models train on normalized graphs. Statistics are one mean and one standard deviation
per parameter inside each node group, pooled over networks and nodes: pooling over nodes keeps the
normalization exactly equivariant to hidden-unit permutations. Parameters that never vary in the zoo
(zero variance) get a unit scale, so normalizing is always invertible.

A zoo whose experts descend from one base differs from network to network by a few percent of each
weight's scale. Pooled statistics leave those differences tiny next to the weights themselves, and a
generative model fitted on them reconstructs the shared part and loses what distinguishes experts.
``centre="network"`` therefore subtracts a reference network, the zoo's element-wise mean, before
the pooled scaling, so that the variation between experts is what gets modelled at unit scale. That
reference is not permutation-invariant: networks are aligned to it first
(:func:`weightspace.graph.permutation.align_to`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from weightspace.errors import WeightError
from weightspace.graph.spec import GraphSpec
from weightspace.graph.weight_graph import WeightGraph


@dataclass(frozen=True)
class GraphNormalizer:
    """Fitted statistics: per node group, one ``(mean, std)`` per member parameter, and optionally a
    reference network (node features ``[n_nodes, feat]`` per group) subtracted first."""

    spec: GraphSpec
    mean: tuple[torch.Tensor, ...]
    std: tuple[torch.Tensor, ...]
    reference: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def fit(
        cls, graph: WeightGraph, centre: Literal["group", "network"] = "group", eps: float = 1e-8
    ) -> GraphNormalizer:
        """Statistics of the networks in ``graph``; ``centre="network"`` subtracts their element-wise
        mean network before pooling (the networks must be in one order: see
        :func:`weightspace.pipeline.encoding.fit_normalizer`)."""
        if centre not in ("group", "network"):
            raise WeightError(f"unknown normalization centre {centre!r}; centres: group, network")
        reference = tuple(t.detach().mean(dim=0) for t in graph.nodes) if centre == "network" else None
        means, stds = [], []
        for i, (g, t) in enumerate(graph.items()):
            t = t.detach().double() - (0 if reference is None else reference[i].double())
            segments = torch.split(t, list(g.widths), dim=2)
            m = torch.stack([s.mean() for s in segments])
            # population std over everything pooled; a single value has std 0
            s = torch.stack([seg.std(correction=0) for seg in segments])
            s = torch.where(s > eps, s, torch.ones_like(s))
            means.append(m.float())
            stds.append(s.float())
        return cls(graph.spec, tuple(means), tuple(stds), reference)

    def reference_params(self) -> dict[str, torch.Tensor] | None:
        """The reference network as parameters with a batch axis of one (None when group-centred)."""
        if self.reference is None:
            return None
        return WeightGraph(self.spec, tuple(r[None] for r in self.reference)).to_params()

    def _columns(self, i: int, stats: tuple[torch.Tensor, ...], like: torch.Tensor) -> torch.Tensor:
        widths = torch.tensor(self.spec.groups[i].widths, device=stats[i].device)
        return stats[i].repeat_interleave(widths).to(like)

    def _offset(self, i: int, like: torch.Tensor) -> torch.Tensor:
        offset = self._columns(i, self.mean, like)
        return offset if self.reference is None else offset + self.reference[i].to(like)

    def normalize(self, graph: WeightGraph) -> WeightGraph:
        self._check(graph)
        return WeightGraph(
            graph.spec,
            tuple((t - self._offset(i, t)) / self._columns(i, self.std, t) for i, t in enumerate(graph.nodes)),
        )

    def denormalize(self, graph: WeightGraph) -> WeightGraph:
        self._check(graph)
        return WeightGraph(
            graph.spec,
            tuple(t * self._columns(i, self.std, t) + self._offset(i, t) for i, t in enumerate(graph.nodes)),
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
        for g, r in zip(self.spec.groups, self.reference or ()):
            out[f"reference/{g.name}"] = r
        return out

    @classmethod
    def from_state_dict(cls, spec: GraphSpec, state: dict[str, torch.Tensor]) -> GraphNormalizer:
        try:
            return cls(
                spec,
                tuple(state[f"mean/{g.name}"] for g in spec.groups),
                tuple(state[f"std/{g.name}"] for g in spec.groups),
                tuple(state[f"reference/{g.name}"] for g in spec.groups)
                if "reference/" + spec.groups[0].name in state
                else None,
            )
        except KeyError as exc:
            raise WeightError(f"normalizer state lacks {exc.args[0]!r}") from None
