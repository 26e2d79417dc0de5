"""Weight graphs: networks as per-layer node features, with their spec and symmetries."""

from weightspace.graph.normalization import GraphNormalizer
from weightspace.graph.permutation import align_to, apply_permutation, permute_params, random_permutations
from weightspace.graph.spec import (
    GraphSpec,
    GroupLayout,
    Layout,
    LayoutBuilder,
    Member,
    NodeGroupSpec,
    ParamSpec,
    PermutationLayout,
    PermutationSpec,
    PermutedAxis,
    dense_members,
)
from weightspace.graph.weight_graph import Params, WeightGraph, check_params

__all__ = [
    "GraphNormalizer",
    "GraphSpec",
    "GroupLayout",
    "Layout",
    "LayoutBuilder",
    "Member",
    "NodeGroupSpec",
    "ParamSpec",
    "Params",
    "PermutationLayout",
    "PermutationSpec",
    "PermutedAxis",
    "WeightGraph",
    "align_to",
    "apply_permutation",
    "check_params",
    "dense_members",
    "permute_params",
    "random_permutations",
]
