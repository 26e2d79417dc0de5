"""WeightGraph: a batch of networks as per-layer node features, convertible to parameters exactly.

The features of node group ``g`` are a tensor ``[B, n_nodes, feat_dim]``. Converting parameters
to a graph and back only moves axes and reshapes (complex numbers are viewed as real/imag pairs),
so the round trip is bitwise exact. Graphs are immutable: every operation returns a new graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from weightspace.errors import WeightError
from weightspace.graph.spec import GraphSpec, NodeGroupSpec

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class WeightGraph:
    """A batch of ``B`` networks of one spec, as node features per group."""

    spec: GraphSpec
    nodes: tuple[torch.Tensor, ...]

    def __post_init__(self) -> None:
        if len(self.nodes) != len(self.spec.groups):
            raise WeightError(f"graph has {len(self.nodes)} node groups, spec has {len(self.spec.groups)}")
        batch = {t.shape[0] if t.dim() else None for t in self.nodes}
        for g, t in zip(self.spec.groups, self.nodes):
            if t.dim() != 3 or tuple(t.shape[1:]) != (g.n_nodes, g.feat_dim):
                raise WeightError(
                    f"node group {g.name!r} has shape {tuple(t.shape)}, expected [B, {g.n_nodes}, {g.feat_dim}]"
                )
        if len(batch) != 1:
            raise WeightError(f"node groups disagree on the batch size: {sorted(batch)}")

    # -- basic properties -------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.nodes[0].shape[0]

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, name: str) -> torch.Tensor:
        """Node features of the group called ``name``."""
        for g, t in zip(self.spec.groups, self.nodes):
            if g.name == name:
                return t
        raise KeyError(f"no node group {name!r}; groups: {', '.join(g.name for g in self.spec.groups)}")

    def items(self) -> Iterator[tuple[NodeGroupSpec, torch.Tensor]]:
        return zip(self.spec.groups, self.nodes)

    def map(self, fn: Callable[[NodeGroupSpec, torch.Tensor], torch.Tensor]) -> WeightGraph:
        """A new graph with ``fn(group, features)`` applied to every node group."""
        return WeightGraph(self.spec, tuple(fn(g, t) for g, t in self.items()))

    def to(self, *args, **kwargs) -> WeightGraph:
        return WeightGraph(self.spec, tuple(t.to(*args, **kwargs) for t in self.nodes))

    def select(self, index: torch.Tensor | slice | Sequence[int]) -> WeightGraph:
        """The sub-batch at ``index`` (a slice, index list or tensor)."""
        return WeightGraph(self.spec, tuple(t[index] for t in self.nodes))

    def unbind(self) -> list[WeightGraph]:
        """Split into ``B`` graphs of batch size 1."""
        return [self.select(slice(i, i + 1)) for i in range(self.batch_size)]

    @staticmethod
    def stack(graphs: Sequence[WeightGraph]) -> WeightGraph:
        """Concatenate graphs of the same spec along the batch dimension."""
        if not graphs:
            raise WeightError("cannot stack an empty list of graphs")
        spec = graphs[0].spec
        for g in graphs[1:]:
            if g.spec != spec:
                raise WeightError(
                    f"cannot stack graphs of different specs ({spec.architecture} and {g.spec.architecture},"
                    " or different configs)"
                )
        return WeightGraph(spec, tuple(torch.cat(ts) for ts in zip(*(g.nodes for g in graphs))))

    def flat(self) -> torch.Tensor:
        """All node features of each network concatenated: ``[B, total]`` (for flat baselines)."""
        return torch.cat([t.reshape(t.shape[0], -1) for t in self.nodes], dim=1)

    # -- conversion ---------------------------------------------------------------------------
    @classmethod
    def from_params(
        cls, spec: GraphSpec, params: Mapping[str, torch.Tensor], *, check_finite: bool = True
    ) -> WeightGraph:
        """Graph of a batch of networks; every tensor is ``[B, *shape]``."""
        check_params(spec, params, batched=True, check_finite=check_finite)
        return cls._assemble(spec, params)

    @classmethod
    def from_state_dict(
        cls, spec: GraphSpec, state_dict: Mapping[str, torch.Tensor], *, check_finite: bool = True
    ) -> WeightGraph:
        """Graph (batch of one) of a single network's parameters."""
        check_params(spec, state_dict, batched=False, check_finite=check_finite)
        return cls._assemble(spec, {k: v.unsqueeze(0) for k, v in state_dict.items()})

    @classmethod
    def _assemble(cls, spec: GraphSpec, params: Mapping[str, torch.Tensor]) -> WeightGraph:
        batch = next(iter(params.values())).shape[0]
        nodes = []
        for g in spec.groups:
            parts = []
            for m in g.members:
                t = params[m.param]
                if t.is_complex():
                    t = torch.view_as_real(t)
                parts.append(t.movedim(m.axis + 1, 1).reshape(batch, g.n_nodes, -1))
            nodes.append(torch.cat(parts, dim=2) if len(parts) > 1 else parts[0].contiguous())
        return cls(spec, tuple(nodes))

    def to_params(self) -> Params:
        """The batched parameter dict ``{name: [B, *shape]}`` this graph encodes."""
        batch = self.batch_size
        out: Params = {}
        for g, t in self.items():
            for m, piece in zip(g.members, torch.split(t, list(g.widths), dim=2)):
                p = self.spec.param(m.param)
                moved = (p.shape[m.axis], *p.shape[: m.axis], *p.shape[m.axis + 1 :])
                if p.is_complex:
                    piece = piece.reshape(batch, *moved, 2).movedim(1, m.axis + 1)
                    out[m.param] = torch.view_as_complex(piece.contiguous())
                else:
                    out[m.param] = piece.reshape(batch, *moved).movedim(1, m.axis + 1).contiguous()
        return {p.name: out[p.name] for p in self.spec.params}

    def to_state_dicts(self) -> list[Params]:
        """One parameter dict per network in the batch."""
        params = self.to_params()
        return [{k: v[i] for k, v in params.items()} for i in range(self.batch_size)]


def check_params(
    spec: GraphSpec, params: Mapping[str, torch.Tensor], *, batched: bool, check_finite: bool = True
) -> None:
    """Raise :class:`WeightError` naming the first parameter that does not fit ``spec``."""
    where = f"for {spec.architecture}"
    expected = {p.name for p in spec.params}
    missing = [p.name for p in spec.params if p.name not in params]
    extra = sorted(set(params) - expected)
    if missing:
        raise WeightError(f"missing parameter(s) {', '.join(missing)} {where}")
    if extra:
        raise WeightError(f"unexpected parameter(s) {', '.join(extra)} {where}")
    batch = None
    for p in spec.params:
        t = params[p.name]
        if not isinstance(t, torch.Tensor):
            raise WeightError(f"parameter {p.name!r} is a {type(t).__name__}, not a tensor")
        shape = tuple(t.shape[1:]) if batched else tuple(t.shape)
        if shape != p.shape or (batched and t.dim() != len(p.shape) + 1):
            want = f"[B, {', '.join(map(str, p.shape))}]" if batched else str(p.shape)
            raise WeightError(f"parameter {p.name!r} has shape {tuple(t.shape)}, expected {want} {where}")
        if t.dtype != p.torch_dtype:
            raise WeightError(f"parameter {p.name!r} has dtype {t.dtype}, expected {p.torch_dtype} {where}")
        if batched:
            if batch is None:
                batch = t.shape[0]
            elif t.shape[0] != batch:
                raise WeightError(f"parameter {p.name!r} has batch size {t.shape[0]}, others have {batch}")
        if check_finite and not torch.isfinite(t).all():
            raise WeightError(f"parameter {p.name!r} contains NaN or infinite values")
