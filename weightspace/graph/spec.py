"""GraphSpec: how a network's parameters map onto weight-graph nodes, and its permutation symmetry.

A network is described as node groups, one per layer: one node per output neuron or channel,
whose features are the parameter slices that feed it (incoming weights, bias, and any skip weights
that merge into it). Each parameter belongs to exactly one group, and a ``Member`` says which of its
axes indexes that group's nodes. Reading and writing the features is then pure reshaping, so the
graph holds exactly the same numbers as the state dict.

Permutation symmetry is described separately: a ``PermutationSpec`` is a set of hidden units
(``size`` of them) and every parameter axis (or axis slice, for concatenated inputs) that must be
reordered together so that the network computes the same function. A node group is permutable when
its nodes are reordered by one such permutation.

Adapters declare a :class:`Layout` (names only); :meth:`GraphSpec.from_layout` combines it with the
parameter shapes, derives node counts and feature widths, and checks that the layout is consistent,
so a wrong layout in a (third-party) adapter fails at once with a message naming the parameter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from weightspace.errors import PluginError, StorageError

SUPPORTED_DTYPES = {"float32": torch.float32, "float64": torch.float64, "complex64": torch.complex64}


@dataclass(frozen=True)
class Member:
    """A parameter inside a node group; ``axis`` indexes the group's nodes."""

    param: str
    axis: int = 0


@dataclass(frozen=True)
class PermutedAxis:
    """One axis of a parameter (or the slice ``[start, start + size)`` of it) moved by a permutation."""

    param: str
    axis: int
    start: int = 0


@dataclass(frozen=True)
class GroupLayout:
    """An adapter's declaration of one node group (shapes are filled in by the spec)."""

    name: str
    members: tuple[Member, ...]
    permutation: str | None = None


@dataclass(frozen=True)
class PermutationLayout:
    """An adapter's declaration of one set of interchangeable hidden units."""

    name: str
    axes: tuple[PermutedAxis, ...]


@dataclass(frozen=True)
class Layout:
    """Everything an adapter declares about its weight graph, before shapes are known."""

    groups: tuple[GroupLayout, ...]
    permutations: tuple[PermutationLayout, ...] = ()


@dataclass(frozen=True)
class ParamSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def torch_dtype(self) -> torch.dtype:
        return SUPPORTED_DTYPES[self.dtype]

    @property
    def is_complex(self) -> bool:
        return self.dtype.startswith("complex")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class NodeGroupSpec:
    """A layer's node group: ``n_nodes`` nodes of ``feat_dim`` real features each."""

    name: str
    members: tuple[Member, ...]
    n_nodes: int
    feat_dim: int
    widths: tuple[int, ...]  # feature columns taken by each member, in order
    permutation: str | None = None

    @property
    def permutable(self) -> bool:
        return self.permutation is not None


@dataclass(frozen=True)
class PermutationSpec:
    name: str
    size: int
    axes: tuple[PermutedAxis, ...]


@dataclass(frozen=True)
class GraphSpec:
    """The frozen, self-describing map between a parameter dict and its weight graph."""

    architecture: str
    config_json: str
    params: tuple[ParamSpec, ...]
    groups: tuple[NodeGroupSpec, ...]
    permutations: tuple[PermutationSpec, ...] = ()
    _param_index: dict[str, ParamSpec] = field(default=None, compare=False, hash=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_param_index", {p.name: p for p in self.params})

    # -- lookup -----------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)

    def param(self, name: str) -> ParamSpec:
        return self._param_index[name]

    def group(self, name: str) -> NodeGroupSpec:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def permutation(self, name: str) -> PermutationSpec:
        for p in self.permutations:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.permutations) or "none"
        raise PluginError(f"unknown permutation {name!r}; {self.architecture} has: {known}")

    @property
    def n_params(self) -> int:
        return sum(p.numel * (2 if p.is_complex else 1) for p in self.params)

    @property
    def n_nodes(self) -> int:
        return sum(g.n_nodes for g in self.groups)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_layout(
        cls,
        architecture: str,
        config: Mapping[str, Any],
        params: Mapping[str, torch.Tensor],
        layout: Layout,
    ) -> GraphSpec:
        """Combine an adapter's layout with real parameter shapes, checking consistency."""

        def fail(msg: str) -> PluginError:
            return PluginError(f"architecture {architecture!r} has an inconsistent layout: {msg}")

        pspecs = []
        for name, t in params.items():
            dtype = str(t.dtype).removeprefix("torch.")
            if dtype not in SUPPORTED_DTYPES:
                raise fail(f"parameter {name!r} has unsupported dtype {dtype}")
            pspecs.append(ParamSpec(name, tuple(t.shape), dtype))
        index = {p.name: p for p in pspecs}

        owner: dict[str, str] = {}
        groups = []
        for gl in layout.groups:
            if not gl.members:
                raise fail(f"group {gl.name!r} has no members")
            sizes, widths = set(), []
            for m in gl.members:
                p = index.get(m.param)
                if p is None:
                    raise fail(f"group {gl.name!r} names unknown parameter {m.param!r}")
                if m.param in owner:
                    raise fail(f"parameter {m.param!r} is in groups {owner[m.param]!r} and {gl.name!r}")
                if not 0 <= m.axis < len(p.shape):
                    raise fail(f"axis {m.axis} out of range for {m.param!r} of shape {p.shape}")
                owner[m.param] = gl.name
                sizes.add(p.shape[m.axis])
                widths.append(p.numel // p.shape[m.axis] * (2 if p.is_complex else 1))
            if len(sizes) != 1:
                raise fail(f"members of group {gl.name!r} disagree on the node count: {sorted(sizes)}")
            groups.append(NodeGroupSpec(gl.name, gl.members, sizes.pop(), sum(widths), tuple(widths), gl.permutation))
        orphans = [p.name for p in pspecs if p.name not in owner]
        if orphans:
            raise fail(f"parameters in no node group: {', '.join(orphans)}")

        perms = []
        for pl in layout.permutations:
            touched = []
            for ax in pl.axes:
                p = index.get(ax.param)
                if p is None:
                    raise fail(f"permutation {pl.name!r} names unknown parameter {ax.param!r}")
                if not 0 <= ax.axis < len(p.shape):
                    raise fail(f"axis {ax.axis} out of range for {ax.param!r} of shape {p.shape}")
                touched.append((ax, p.shape[ax.axis]))
            # the permutation's size is the node count of the group(s) whose nodes it reorders
            group_sizes = {g.n_nodes for g in groups if g.permutation == pl.name}
            if len(group_sizes) != 1:
                raise fail(f"permutation {pl.name!r} must permute exactly one node count, got {group_sizes}")
            size = group_sizes.pop()
            for ax, length in touched:
                if ax.start < 0 or ax.start + size > length:
                    raise fail(f"permutation {pl.name!r} overruns axis {ax.axis} of {ax.param!r}")
            perms.append(PermutationSpec(pl.name, size, pl.axes))
        perm_names = {p.name for p in perms}
        for g in groups:
            if g.permutation is None:
                continue
            if g.permutation not in perm_names:
                raise fail(f"group {g.name!r} names unknown permutation {g.permutation!r}")
            axes = set(next(p for p in perms if p.name == g.permutation).axes)
            for m in g.members:
                if PermutedAxis(m.param, m.axis, 0) not in axes:
                    raise fail(
                        f"permutation {g.permutation!r} must move axis {m.axis} of {m.param!r}, "
                        f"which indexes the nodes of group {g.name!r}"
                    )
        config_json = json.dumps(dict(config), sort_keys=True)
        return cls(architecture, config_json, tuple(pspecs), tuple(groups), tuple(perms))

    # -- JSON --------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "architecture": self.architecture,
                "config": self.config,
                "params": [[p.name, list(p.shape), p.dtype] for p in self.params],
                "groups": [
                    {
                        "name": g.name,
                        "members": [[m.param, m.axis] for m in g.members],
                        "n_nodes": g.n_nodes,
                        "feat_dim": g.feat_dim,
                        "widths": list(g.widths),
                        "permutation": g.permutation,
                    }
                    for g in self.groups
                ],
                "permutations": [
                    {"name": p.name, "size": p.size, "axes": [[a.param, a.axis, a.start] for a in p.axes]}
                    for p in self.permutations
                ],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> GraphSpec:
        try:
            d = json.loads(text)
            return cls(
                architecture=d["architecture"],
                config_json=json.dumps(d["config"], sort_keys=True),
                params=tuple(ParamSpec(n, tuple(s), t) for n, s, t in d["params"]),
                groups=tuple(
                    NodeGroupSpec(
                        g["name"],
                        tuple(Member(p, a) for p, a in g["members"]),
                        g["n_nodes"],
                        g["feat_dim"],
                        tuple(g["widths"]),
                        g["permutation"],
                    )
                    for g in d["groups"]
                ),
                permutations=tuple(
                    PermutationSpec(p["name"], p["size"], tuple(PermutedAxis(*a) for a in p["axes"]))
                    for p in d["permutations"]
                ),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"not a valid graph spec: {exc}") from None


def dense_members(prefix: str, *, bias: bool = True) -> tuple[Member, ...]:
    """Members of a weight ``(out, in, ...)`` + bias ``(out,)`` layer: nodes are output units."""
    weight = (Member(f"{prefix}.weight", 0),)
    return weight + ((Member(f"{prefix}.bias", 0),) if bias else ())


class LayoutBuilder:
    """Accumulates node groups and permutation axes layer by layer, for adapters' ``layout()``.

    A permutable group's own node axes are added to its permutation automatically; consumers of a
    permuted set (the next layer's input axis) are added with :meth:`moves`.
    """

    def __init__(self) -> None:
        self._groups: list[GroupLayout] = []
        self._axes: dict[str, list[PermutedAxis]] = {}

    def group(self, name: str, members: Sequence[Member], permutation: str | None = None) -> None:
        self._groups.append(GroupLayout(name, tuple(members), permutation))
        if permutation is not None:
            self._axes.setdefault(permutation, []).extend(PermutedAxis(m.param, m.axis) for m in members)

    def moves(self, permutation: str, param: str, axis: int, start: int = 0) -> None:
        """Permutation ``permutation`` also reorders ``param`` along ``axis`` from ``start`` on."""
        self._axes.setdefault(permutation, []).append(PermutedAxis(param, axis, start))

    def dense(self, name: str, prefix: str, *, permutation: str | None, inputs: str | None, bias: bool = True) -> None:
        """A layer with weight ``(out, in, ...)`` and bias, reading the units permuted by ``inputs``."""
        self.group(name, dense_members(prefix, bias=bias), permutation)
        if inputs is not None:
            self.moves(inputs, f"{prefix}.weight", 1)

    def build(self) -> Layout:
        return Layout(tuple(self._groups), tuple(PermutationLayout(n, tuple(a)) for n, a in self._axes.items()))
