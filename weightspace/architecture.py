"""The architecture adapter: one expert architecture, bound to a config, seen as weights and as a function.

An adapter is the only place that knows an architecture's internals. It builds the real module
(e.g. neuraloperator's FNO), declares the weight-graph layout and the permutation symmetry of its
parameters, and evaluates many parameter sets at once through ``torch.func`` so that zoos and
generated experts can be trained and tested in one call. Everything else in weightspace works on
parameter dicts, weight graphs and the two functions :meth:`functional` and :meth:`rollout`.

Subclasses set ``name``, ``Config`` (a frozen dataclass with defaults), ``prediction`` and
``input_ndim``, and implement ``_build``, ``layout`` and ``example_input``.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torchdiffeq import odeint

from weightspace.config import config_to_dict, make_config
from weightspace.errors import ConfigError, WeightError
from weightspace.graph import GraphSpec, Layout, Params, WeightGraph, check_params


class Prediction(str, enum.Enum):
    """How an architecture predicts the future of a state."""

    ONE_STEP = "one-step"
    """The network maps the state at t to the state at t + dt; rollouts apply it autoregressively."""
    VECTOR_FIELD = "vector-field"
    """The network is dx/dt = f(x); rollouts integrate it with an ODE solver (torchdiffeq)."""


class ArchitectureAdapter(ABC):
    """An expert architecture with a fixed config. Instances are cheap; the module is built lazily."""

    name: ClassVar[str]
    Config: ClassVar[type]
    prediction: ClassVar[Prediction]
    input_ndim: ClassVar[int]
    """Dimensions of one state without batch axes: 3 for ``[C, H, W]`` fields, 1 for ``[D]`` vectors."""
    test_space: ClassVar[Mapping[str, Sequence[Any]]] = {}
    """Small values per config key, from which property tests draw random configs."""
    profiles: ClassVar[Mapping[str, Mapping[str, Mapping[str, Any]]]] = {}
    """Per profile (``quick``, ``paper``): ``{"architecture": config overrides, "zoo": zoo-setting
    overrides}``, e.g. a smaller network and a longer unroll for the quick profile."""

    def __init__(self, config: Any = None) -> None:
        config = self.Config() if config is None else config
        if not isinstance(config, self.Config):
            raise ConfigError(f"architecture {self.name!r} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self._templates: dict[torch.device, nn.Module] = {}

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None = None) -> ArchitectureAdapter:
        """The adapter for the default config changed by ``overrides`` (strings are parsed)."""
        return cls(make_config(cls.Config, overrides, owner=f"architecture {cls.name!r}"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    @classmethod
    def data_overrides(cls, state_shape: tuple[int, ...]) -> dict[str, Any]:
        """Config values implied by a dataset's state shape (channels, resolution, state size)."""
        return {}

    # -- what a subclass provides -------------------------------------------------------------
    @abstractmethod
    def _build(self) -> nn.Module:
        """A freshly initialised module for ``self.config`` (global RNG already seeded)."""

    @abstractmethod
    def layout(self) -> Layout:
        """Node groups and permutation symmetry of the module's parameters."""

    @abstractmethod
    def example_input(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random states the network accepts, ``[n, *state]`` (for checks and ``inspect``)."""

    def solver_options(self, dt: float) -> dict[str, Any]:
        """Arguments for ``torchdiffeq.odeint`` when integrating a vector field between frames dt apart."""
        return {"method": "rk4", "options": {"step_size": dt}}

    # -- modules and parameters -------------------------------------------------------------
    def build(self, seed: int = 0, device: str | torch.device = "cpu") -> nn.Module:
        """A module initialised reproducibly from ``seed`` (without touching the global RNG)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._build()
        return module.to(device)

    def state_dict(self, module: nn.Module) -> Params:
        """The module's parameters (only trainable tensors; neuraloperator's ``_metadata`` is dropped)."""
        return {k: v.detach() for k, v in module.named_parameters()}

    def init_params(self, n: int, seed: int = 0, device: str | torch.device = "cpu") -> Params:
        """Batched parameters ``{name: [n, ...]}`` of ``n`` independently initialised networks."""
        seeds = torch.randint(0, 2**62, (n,), generator=torch.Generator().manual_seed(seed)).tolist()
        params, _ = stack_module_state([self.build(s, device) for s in seeds])
        return {k: v.detach() for k, v in params.items()}

    def modules(self, params: Mapping[str, torch.Tensor], device: str | torch.device = "cpu") -> list[nn.Module]:
        """One real module per network of batched ``params`` (for loops, reference checks, export)."""
        check_params(self.spec, params, batched=True, check_finite=False)
        batch = next(iter(params.values())).shape[0]
        out = []
        for i in range(batch):
            module = self.build(0, device)
            with torch.no_grad():
                for name, p in module.named_parameters():
                    p.copy_(params[name][i])
            out.append(module)
        return out

    def _template(self, device: torch.device) -> nn.Module:
        if device not in self._templates:
            self._templates[device] = self.build(0, device)
        return self._templates[device]

    @cached_property
    def spec(self) -> GraphSpec:
        params = self.state_dict(self._template(torch.device("cpu")))
        return GraphSpec.from_layout(self.name, config_to_dict(self.config), params, self.layout())

    # -- weight graphs --------------------------------------------------------------------------
    def to_graph(self, params: Mapping[str, torch.Tensor]) -> WeightGraph:
        """Graph of batched parameters ``{name: [B, ...]}`` (lossless)."""
        return WeightGraph.from_params(self.spec, params)

    def from_graph(self, graph: WeightGraph) -> Params:
        """Batched parameters encoded by ``graph`` (bitwise equal to those it was made from)."""
        if graph.spec != self.spec:
            raise WeightError(
                f"graph of {graph.spec.architecture} {graph.spec.config} does not fit {self.name} {self.spec.config}"
            )
        return graph.to_params()

    # -- evaluation -------------------------------------------------------------------------------
    def functional(
        self, params: Mapping[str, torch.Tensor], x: torch.Tensor, chunk_size: int | None = None
    ) -> torch.Tensor:
        """Apply B networks at once: ``x`` is ``[B, N, *state]`` (one input batch per network) or
        ``[N, *state]`` (shared); returns ``[B, N, *out]``. For one-step operators the output is the
        next state, for vector fields it is dx/dt."""
        check_params(self.spec, params, batched=True, check_finite=False)
        shared = x.dim() == self.input_ndim + 1
        if not shared and x.dim() != self.input_ndim + 2:
            raise WeightError(
                f"{self.name} input has shape {tuple(x.shape)}; expected [B, N, *state] or [N, *state] "
                f"with a state of {self.input_ndim} dimension(s)"
            )
        module = self._template(x.device)

        def call(p: Params, xb: torch.Tensor) -> torch.Tensor:
            return functional_call(module, p, (xb,))

        return vmap(call, in_dims=(0, None if shared else 0), chunk_size=chunk_size)(dict(params), x)

    def rollout(
        self,
        params: Mapping[str, torch.Tensor],
        x0: torch.Tensor,
        n_steps: int,
        dt: float,
        chunk_size: int | None = None,
    ) -> torch.Tensor:
        """Predict ``n_steps`` frames ahead from ``x0`` (shapes and ``chunk_size`` as in :meth:`functional`).

        Returns ``[B, N, n_steps + 1, *state]``; index 0 along the time axis is ``x0``. Differentiable
        with respect to ``params`` (trainers unroll through it).
        """
        batch = next(iter(params.values())).shape[0]
        if x0.dim() == self.input_ndim + 1:
            x0 = x0.expand(batch, *x0.shape)
        if self.prediction is Prediction.ONE_STEP:
            states = [x0]
            for _ in range(n_steps):
                states.append(self.functional(params, states[-1], chunk_size))
                if states[-1].shape != x0.shape:
                    raise WeightError(
                        f"{self.name} maps states of shape {tuple(x0.shape[2:])} to {tuple(states[-1].shape[2:])}; "
                        "an autoregressive rollout needs outputs shaped like inputs"
                    )
            return torch.stack(states, dim=2)
        times = torch.arange(n_steps + 1, dtype=x0.dtype, device=x0.device) * dt
        path = odeint(lambda _t, y: self.functional(params, y, chunk_size), x0, times, **self.solver_options(dt))
        return path.movedim(0, 2)


class GridOperatorAdapter(ArchitectureAdapter):
    """Base of one-step operators on 2-D fields ``[C, H, W]``.

    Its config needs ``in_channels`` and ``grid_size`` (the resolution of example inputs).
    """

    prediction = Prediction.ONE_STEP
    input_ndim = 3

    @classmethod
    def data_overrides(cls, state_shape: tuple[int, ...]) -> dict[str, Any]:
        channels, *grid = state_shape
        return {"in_channels": channels, "out_channels": channels, "grid_size": tuple(grid)}

    def example_input(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.config.in_channels, *self.config.grid_size, generator=generator)
