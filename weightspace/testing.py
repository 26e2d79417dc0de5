"""Contract checks for architecture plugins, usable from any test suite.

weightspace's own suite runs these for every registered architecture, over random small configs
drawn from the adapter's ``test_space``, so a third-party architecture gets the same property
tests for free. In a plugin's tests::

    from hypothesis import given, settings, strategies as st
    from weightspace.testing import check_architecture, config_strategy

    @settings(max_examples=10, deadline=None)
    @given(config=config_strategy(MyAdapter), seed=st.integers(0, 2**16))
    def test_contract(config, seed):
        check_architecture(MyAdapter(config), seed=seed)

Each ``check_*`` raises ``AssertionError`` with the measured error when the contract is broken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from weightspace.architecture import ArchitectureAdapter, Prediction
from weightspace.components import Component
from weightspace.diagnostics import functional_loop_error, permutation_error, roundtrip_is_bitwise
from weightspace.errors import WeightError
from weightspace.graph import Params, WeightGraph


def random_params(adapter: ArchitectureAdapter, n: int, seed: int) -> Params:
    """``n`` networks: the architecture's own initialisation plus noise on every parameter.

    The noise makes parameters that initialise to constants (zero biases, unit gates) distinct,
    so a layout that misplaces them cannot pass the checks by accident.
    """
    generator = torch.Generator().manual_seed(seed)
    params = adapter.init_params(n, seed)
    out = {}
    for name, p in params.items():
        scale = float(p.abs().mean()) or 1.0
        noise = torch.randn(p.shape, generator=generator, dtype=torch.float32 if not p.is_complex() else p.dtype)
        out[name] = p + 0.1 * scale * noise.to(p.dtype)
    return out


def check_roundtrip(adapter: ArchitectureAdapter, params: Params) -> None:
    assert roundtrip_is_bitwise(adapter, params), f"{adapter.name}: params -> graph -> params is not bitwise exact"


def check_permutation_invariance(
    adapter: ArchitectureAdapter, params: Params, x: torch.Tensor, seed: int, rtol: float = 1e-4
) -> None:
    """Random permutations of all hidden units leave the output unchanged (relative to its scale)."""
    scale = float(adapter.functional(params, x).abs().max()) + 1.0
    error = permutation_error(adapter, params, x, torch.Generator().manual_seed(seed))
    assert error <= rtol * scale, f"{adapter.name}: permuting hidden units changed the output by {error:.3g}"


def check_functional_matches_loop(
    adapter: ArchitectureAdapter, params: Params, x: torch.Tensor, rtol: float = 1e-5
) -> None:
    """The batched ``functional`` equals a loop over real modules (vmap changes nothing)."""
    with torch.no_grad():
        scale = float(adapter.functional(params, x).abs().max()) + 1.0
    error = functional_loop_error(adapter, params, x)
    assert error <= rtol * scale, f"{adapter.name}: batched evaluation differs from a loop by {error:.3g}"


def check_stack_unstack(adapter: ArchitectureAdapter, params: Params) -> None:
    """Graphs of single networks stack into the batch graph and split back, exactly."""
    graph = adapter.to_graph(params)
    singles = [WeightGraph.from_state_dict(adapter.spec, sd) for sd in graph.to_state_dicts()]
    stacked = WeightGraph.stack(singles)
    assert all(torch.equal(a, b) for a, b in zip(stacked.nodes, graph.nodes)), f"{adapter.name}: stack differs"
    for single, part in zip(singles, graph.unbind()):
        assert all(torch.equal(a, b) for a, b in zip(single.nodes, part.nodes)), f"{adapter.name}: unbind differs"


def check_rollout(
    adapter: ArchitectureAdapter, params: Params, x: torch.Tensor, n_steps: int = 3, dt: float = 0.1
) -> None:
    """Rollouts have the declared shape, start at x0, and (for operators) chain ``functional``."""
    with torch.no_grad():
        if adapter.prediction is Prediction.ONE_STEP and adapter.functional(params, x).shape[2:] != x.shape[1:]:
            try:
                adapter.rollout(params, x, n_steps, dt)
            except WeightError:
                return  # outputs are not states: rolling out must fail clearly, and did
            raise AssertionError(f"{adapter.name}: rollout of a non-state output did not raise WeightError")
        path = adapter.rollout(params, x, n_steps, dt)
        batch = next(iter(params.values())).shape[0]
        assert path.shape[:3] == (batch, x.shape[0], n_steps + 1), f"{adapter.name}: rollout shape {tuple(path.shape)}"
        assert torch.equal(path[:, :, 0], x.expand(batch, *x.shape)), f"{adapter.name}: rollout must start at x0"
        if adapter.prediction is Prediction.ONE_STEP:
            step = adapter.functional(params, path[:, :, 1])
            assert torch.allclose(step, path[:, :, 2], atol=1e-6), f"{adapter.name}: rollout is not autoregressive"


def check_architecture(adapter: ArchitectureAdapter, seed: int = 0, n: int = 3) -> None:
    """Every contract check on ``n`` random networks of ``adapter``'s config."""
    params = random_params(adapter, n, seed)
    x = adapter.example_input(2, torch.Generator().manual_seed(seed + 1))
    check_roundtrip(adapter, params)
    check_stack_unstack(adapter, params)
    check_permutation_invariance(adapter, params, x, seed)
    check_functional_matches_loop(adapter, params, x)
    check_rollout(adapter, params, x)


def config_strategy(adapter_cls: type[ArchitectureAdapter]) -> Any:
    """A hypothesis strategy of configs drawn from ``adapter_cls.test_space`` (needs hypothesis)."""
    from hypothesis import strategies as st

    from weightspace.config import make_config

    space = {key: st.sampled_from(list(values)) for key, values in adapter_cls.test_space.items()}
    return st.fixed_dictionaries(space).map(lambda d: make_config(adapter_cls.Config, d, owner=adapter_cls.name))


def check_component_round_trip(components: list[Any], folder: Any) -> None:
    """Each component saved to a subfolder of ``folder`` loads back as the same class, config and
    state dict (keys in order, tensors equal)."""
    for i, component in enumerate(components):
        component.save(Path(folder) / str(i))
        loaded = Component.load(Path(folder) / str(i))
        assert type(loaded) is type(component) and loaded.config == component.config
        for (k, v), (k2, v2) in zip(component.state_dict().items(), loaded.state_dict().items()):
            assert k == k2 and torch.equal(v, v2)
