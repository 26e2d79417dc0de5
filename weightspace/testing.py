"""Contract checks for architecture and system plugins, usable from any test suite.

weightspace's own suite runs these for every registered architecture, over random small configs
drawn from the adapter's ``test_space``, and for every built-in system at a tiny size, so a
third-party plugin gets the same property tests for free. In a plugin's tests::

    from hypothesis import given, settings, strategies as st
    from weightspace.testing import check_architecture, check_system, config_strategy

    @settings(max_examples=10, deadline=None)
    @given(config=config_strategy(MyAdapter), seed=st.integers(0, 2**16))
    def test_contract(config, seed):
        check_architecture(MyAdapter(config), seed=seed)

    def test_system_contract():
        check_system(MySystem, overrides={"n_frames": 5, "resolution": 16})

Each ``check_*`` raises ``AssertionError`` with the measured error when the contract is broken.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from weightspace.architecture import ArchitectureAdapter, Prediction
from weightspace.components import Component
from weightspace.config import config_to_dict, make_config
from weightspace.diagnostics import functional_loop_error, permutation_error, roundtrip_is_bitwise
from weightspace.errors import ConfigError, WeightError
from weightspace.graph import Params, WeightGraph, permute_params, random_permutations
from weightspace.system import System, SystemSettings


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


PERMUTATION_RTOL = 1e-4
"""Largest output change under a permutation of hidden units, relative to max |output| + 1, that
counts as float32 rounding rather than a broken symmetry."""


def permutation_violations(
    adapter: ArchitectureAdapter, params: Params, x: torch.Tensor, seed: int, rtol: float = PERMUTATION_RTOL
) -> dict[str, float]:
    """The permutation sets whose random reordering, one set at a time, changes the output of
    ``params`` on the shared input ``x`` by more than ``rtol`` x (max |output| + 1): ``{set: change}``.

    Permuting one set at a time names the set whose layout is wrong (a consumer axis it does not
    move, an axis it moves that is not its own); all sets at once could only say that one is.
    """
    generator = torch.Generator().manual_seed(seed)
    batch = next(iter(params.values())).shape[0]
    with torch.no_grad():
        output = adapter.functional(params, x)
        tolerance = rtol * (float(output.abs().max()) + 1.0)
        out = {}
        for name, perm in random_permutations(adapter.spec, batch, generator).items():
            permuted = permute_params(adapter.spec, params, {name: perm.to(x.device)})
            error = float((adapter.functional(permuted, x) - output).abs().max())
            if not error <= tolerance:
                out[name] = error
    return out


def check_permutation_invariance(
    adapter: ArchitectureAdapter, params: Params, x: torch.Tensor, seed: int, rtol: float = PERMUTATION_RTOL
) -> None:
    """Random permutations of each hidden-unit set, and of all of them at once, leave the output
    unchanged (relative to its scale)."""
    broken = permutation_violations(adapter, params, x, seed, rtol)
    assert not broken, f"{adapter.name}: permuting hidden units changed the output: " + ", ".join(
        f"set {name!r} by {error:.3g}" for name, error in broken.items()
    )
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


def check_system(
    system: System | type[System],
    profile: str = "quick",
    overrides: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    n_envs: int = 2,
    n_traj: int = 2,
) -> None:
    """Every contract check of a System plugin, on ``n_envs`` seen environments of ``n_traj``
    trajectories each: a class is built with ``profile`` and ``overrides`` (choose them small, the
    check simulates three times), an instance is checked as it is.

    Checked: the class attributes and every profile's settings; the environment grid ``[E, P]``
    (float64, finite, one column per ``param_names``, the same on every call); ``state_shape`` (``(D,)``
    for an ODE, ``(C, H, W)`` for fields, one ``C`` or ``D`` per ``channel_names``); the split (a
    seeded partition of the grid into ``n_seen`` seen, ``n_val_envs`` validation and at least one
    test environment); trajectories ``[E, N, T, *state]`` with ``T = n_frames``, float32 and finite,
    the same for the same seed; per-frame statistics; and that what is recorded beside the data
    (settings, solver attributes) is JSON.
    """
    if isinstance(system, type):
        system = system(profile, overrides)
    assert isinstance(system, System), f"{system!r} is not a weightspace.system.System"
    cls, label = type(system), f"system {getattr(system, 'name', type(system).__name__)!r}"
    _check_system_class(cls, label)
    s = system.settings
    assert isinstance(s, cls.Settings), f"{label}: settings are a {type(s).__name__}, not its Settings"

    envs = system.environments()
    assert isinstance(envs, torch.Tensor) and envs.dtype == torch.float64, (
        f"{label}: environments() must be a float64 tensor, got {getattr(envs, 'dtype', type(envs).__name__)}"
    )
    n_params = len(system.param_names)
    assert envs.dim() == 2 and envs.shape[1] == n_params, (
        f"{label}: environments() has shape {list(envs.shape)}; expected [E, {n_params}] "
        f"(one column per parameter {', '.join(system.param_names)})"
    )
    assert torch.isfinite(envs).all(), f"{label}: environments() holds NaN or inf"
    assert torch.equal(envs, system.environments()), f"{label}: environments() changes between calls"

    state = system.state_shape()
    n_channels = len(system.channel_names)
    assert isinstance(state, tuple) and all(isinstance(n, int) and n > 0 for n in state), (
        f"{label}: state_shape() must be a tuple of positive ints, got {state!r}"
    )
    wanted = "(D,) for an ODE (is_ode = True)" if system.is_ode else "(C, H, W) for fields (is_ode = False)"
    assert len(state) == (1 if system.is_ode else 3), f"{label}: state_shape() is {state}; expected {wanted}"
    assert state[0] == n_channels, (
        f"{label}: state_shape() is {state} but channel_names names {n_channels} channel(s) "
        f"({', '.join(system.channel_names)})"
    )

    parts = system.split(seed)
    assert len(parts) == 3, f"{label}: split({seed}) must give (seen, val, test) environment indices"
    seen, val, test = parts
    assert torch.equal(torch.cat([seen, val, test]).sort().values, torch.arange(len(envs))), (
        f"{label}: split({seed}) is not a partition of the {len(envs)} environments into seen, val and test"
    )
    assert len(seen) == s.n_seen, f"{label}: split({seed}) gives {len(seen)} seen environments, n_seen is {s.n_seen}"
    assert len(val) == system.n_val_envs, (
        f"{label}: split({seed}) gives {len(val)} validation environments; val_fraction asks for {system.n_val_envs}"
    )
    assert len(test) > 0, f"{label}: split({seed}) leaves no test environment"
    assert all(torch.equal(a, b) for a, b in zip(parts, system.split(seed))), (
        f"{label}: split({seed}) differs between calls with the same seed"
    )

    index = seen[:n_envs]
    traj = system.simulate(index, n_traj, seed, "seen")
    expected = [len(index), n_traj, s.n_frames, *state]
    assert isinstance(traj, torch.Tensor) and list(traj.shape) == expected, (
        f"{label}: simulate() returned trajectories of shape {list(getattr(traj, 'shape', []))}; expected "
        f"[E, N, T, *state_shape()] = {expected}"
    )
    assert traj.dtype == torch.float32, f"{label}: trajectories are {traj.dtype}; the data format stores float32"
    assert torch.isfinite(traj).all(), f"{label}: trajectories hold NaN or inf"
    again = system.simulate(index, n_traj, seed, "seen")
    assert torch.equal(traj, again), f"{label}: the same seed gave different trajectories"

    stats = system.statistics(traj)
    assert stats.dim() == 4 and stats.shape[:3] == traj.shape[:3] and torch.isfinite(stats).all(), (
        f"{label}: statistics() of [E, N, T, *state] frames must be finite [E, N, T, S], got {list(stats.shape)}"
    )
    terms = system.polynomial_coefficients(envs[0])
    assert terms is None or set(terms) == set(system.channel_names), (
        f"{label}: polynomial_coefficients() must map each of {', '.join(system.channel_names)} to its terms"
    )
    try:
        json.dumps([config_to_dict(s), system.solver_attributes()])
    except TypeError as exc:
        raise AssertionError(f"{label}: settings and solver_attributes() are recorded as JSON: {exc}") from None


def _check_system_class(cls: type[System], label: str) -> None:
    """The class attributes a System subclass sets, and each profile's settings."""
    assert isinstance(cls.name, str) and cls.name, f"{label}: name must be a non-empty string"
    for attr in ("param_names", "channel_names"):
        names = getattr(cls, attr, None)
        assert isinstance(names, tuple) and names and all(isinstance(n, str) for n in names), (
            f"{label}: {attr} must be a non-empty tuple of strings, got {names!r}"
        )
    assert isinstance(cls.Settings, type) and issubclass(cls.Settings, SystemSettings), (
        f"{label}: Settings must be a frozen dataclass extending weightspace.system.SystemSettings"
    )
    assert isinstance(cls.profiles, Mapping) and "quick" in cls.profiles, (
        f"{label}: profiles must map profile names to settings overrides, with at least 'quick'"
    )
    for name, profile in cls.profiles.items():
        try:
            make_config(cls.Settings, profile, owner=f"{label}, profile {name!r}")
        except ConfigError as exc:
            raise AssertionError(str(exc)) from None
