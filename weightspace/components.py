"""The learned components of weight generation: Encoder, Generator and Prompter.

Each is an ``nn.Module`` built from a frozen-dataclass ``Config`` plus a :class:`Context` (the facts
about the zoo it is built for: the graph spec, the state shape, the number of environment
parameters), and round-trips through a folder holding ``config.json`` and ``weights.safetensors``,
as diffusers' components do. Plugins register subclasses under a ``name`` through the
``weightspace_encoders`` / ``weightspace_generators`` / ``weightspace_prompters`` hooks.

- An :class:`Encoder` maps normalized weight graphs to latent tokens ``[B, N, z]`` and back.
- A :class:`Generator` learns the distribution of latent tokens given a condition vector and samples it.
- A :class:`Prompter` turns L observed frames (or, for the oracle, the environment parameters) into the
  condition vector, with an auxiliary regression of the environment parameters.
"""

from __future__ import annotations

import itertools
import json
from abc import abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from weightspace.config import config_to_dict, make_config
from weightspace.errors import StorageError
from weightspace.graph import GraphSpec
from weightspace.storage import atomic_path, load_tensors, save_tensors


@dataclass(frozen=True)
class Context:
    """What a component must know about the zoo it serves (saved beside its config)."""

    spec_json: str
    """The architecture's GraphSpec as JSON."""
    state_shape: tuple[int, ...]
    n_env_params: int
    latent_tokens: int = 0
    """Tokens per network in latent space (set once an encoder exists)."""
    latent_dim: int = 0
    condition_dim: int = 0
    """Width of the prompter's condition vector (set once a prompter exists)."""

    @property
    def spec(self) -> GraphSpec:
        return GraphSpec.from_json(self.spec_json)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Context:
        return cls(**{**data, "state_shape": tuple(data["state_shape"])})


class Component(nn.Module):
    """Base of encoders, generators and prompters: config + context + weights, saved as a folder."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, config: Any, context: Context) -> None:
        super().__init__()
        self.config, self.context = config, context

    @property
    def device(self) -> torch.device:
        """Where the component's weights live (the CPU for one without any): training runs there."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            return tensor.device
        return torch.device("cpu")

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None, context: Context) -> Component:
        return cls(make_config(cls.Config, overrides, owner=f"{cls.kind} {cls.name!r}"), context)

    def save(self, folder: str | Path) -> None:
        """Write ``config.json`` and ``weights.safetensors`` (both atomically) into ``folder``."""
        folder = Path(folder)
        save_tensors(folder / "weights.safetensors", self.state_dict())
        meta = {"kind": self.kind, "name": self.name, "config": config_to_dict(self.config)}
        meta["context"] = self.context.to_dict()
        with atomic_path(folder / "config.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1))

    @staticmethod
    def load(folder: str | Path, registry: Any = None) -> Component:
        """Rebuild a saved component of any registered kind from its folder."""
        from weightspace.registry import default_registry

        folder = Path(folder)
        path = folder / "config.json"
        if not path.is_file():
            raise StorageError(f"{folder} holds no component: missing config.json")
        meta = json.loads(path.read_text())
        cls = (registry or default_registry()).get(meta["kind"], meta["name"])
        component = cls.from_overrides(meta["config"], Context.from_dict(meta["context"]))
        weights = load_tensors(folder / "weights.safetensors")[0]
        try:
            component.load_state_dict(weights)
        except RuntimeError as exc:
            raise StorageError(f"{folder}: weights do not fit the config: {str(exc).splitlines()[0]}") from None
        return component


class Encoder(Component):
    kind = "encoders"

    @abstractmethod
    def encode(self, nodes: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance ``[B, N, z]`` of the latent tokens of normalized node features."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Normalized node features (one tensor ``[B, n_nodes, feat_dim]`` per group) of latents."""

    @property
    @abstractmethod
    def latent_shape(self) -> tuple[int, int]:
        """``(tokens, dim)`` of one network's latent."""


class Generator(Component):
    kind = "generators"

    @abstractmethod
    def training_loss(self, latents: torch.Tensor, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The objective on a batch of latents ``[B, N, z]`` with conditions ``[B, c]`` (scalar)."""

    @abstractmethod
    def sample(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One latent ``[B, N, z]`` per condition ``[B, c]``, deterministic given ``generator``."""

    def fit_scale(self, latents: torch.Tensor) -> None:
        """Fit fixed statistics (buffers) of the training latents ``[N, tokens, z]`` before training;
        by default there are none."""

    def fit_source(self, latents: torch.Tensor) -> None:
        """See latents ``[M, tokens, z]`` of networks fresh from the architecture's initializer, before
        training (a flow can start from them); by default they are not needed."""

    def fit_memory(self, latents: torch.Tensor, condition: torch.Tensor, group: torch.Tensor) -> None:
        """See, after training, every zoo expert's latent ``[N, tokens, z]``, the condition of its
        environment's observed frames ``[N, c]`` and its environment's index ``[N]`` (a retrieval
        generator keeps them); by default nothing is kept."""


class Prompter(Component):
    """Base of prompters. Every prompter has an auxiliary linear head ``aux`` regressing the normalized
    environment parameters from its condition vector (``aux_loss``), which shapes the condition
    around what distinguishes environments."""

    kind = "prompters"

    def __init__(self, config: Any, context: Context) -> None:
        super().__init__(config, context)
        self.aux = nn.Linear(self.dim, context.n_env_params)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Width of the condition vector."""

    @abstractmethod
    def forward(self, frames: torch.Tensor, env_params: torch.Tensor) -> torch.Tensor:
        """Condition ``[B, dim]`` from normalized frames ``[B, L, *state]`` (and, for the oracle, the
        normalized environment parameters ``[B, P]``)."""

    def aux_loss(self, condition: torch.Tensor, env_params: torch.Tensor) -> torch.Tensor:
        """Mean squared error of regressing the normalized environment parameters from the condition."""
        return (self.aux(condition) - env_params).pow(2).mean()

    def fit_scale(self, trajectories: torch.Tensor) -> None:
        """Fit fixed statistics (buffers) of the normalized training trajectories ``[G, n, T, *state]``
        before training; by default there are none."""
