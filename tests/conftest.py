import pytest
import torch

from weightspace.graph import GraphSpec, LayoutBuilder, Member, WeightGraph


@pytest.fixture
def toy_spec() -> GraphSpec:
    """A two-layer net with a complex weight and a skip merged into the hidden nodes."""
    params = {
        "a.weight": torch.zeros(4, 3),
        "a.bias": torch.zeros(4),
        "a.skip": torch.zeros(4, 3),
        "b.weight": torch.zeros(2, 4, 2, dtype=torch.complex64),
        "b.bias": torch.zeros(2),
    }
    b = LayoutBuilder()
    b.group("a", (Member("a.weight"), Member("a.bias"), Member("a.skip")), permutation="hidden")
    b.dense("b", "b", permutation=None, inputs="hidden")
    return GraphSpec.from_layout("toy", {"width": 4}, params, b.build())


@pytest.fixture
def toy_params(toy_spec):
    g = torch.Generator().manual_seed(0)
    return {p.name: torch.randn(3, *p.shape, generator=g, dtype=p.torch_dtype) for p in toy_spec.params}


@pytest.fixture
def toy_graph(toy_spec, toy_params) -> WeightGraph:
    return WeightGraph.from_params(toy_spec, toy_params)
