"""The ``nearest`` generator: retrieval in prompt space, no generation.

After training (which only shapes the prompter, through its auxiliary regression of the
environment parameters), it keeps every zoo expert's latent with the condition of its environment's
observed frames (``fit_memory``). Sampling returns, for each condition, a random expert of the seen
environment whose condition is nearest (Euclidean): the retrieval baseline a generator must beat
on unseen environments to show it does more than look experts up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from weightspace.components import Context, Generator
from weightspace.errors import ConfigError


@dataclass(frozen=True)
class NearestConfig:
    pass


class NearestGenerator(Generator):
    name = "nearest"
    Config = NearestConfig

    def __init__(self, config: NearestConfig, context: Context) -> None:
        super().__init__(config, context)
        self.register_buffer("memory_latents", torch.zeros(0, context.latent_tokens, context.latent_dim))
        self.register_buffer("memory_conditions", torch.zeros(0, context.condition_dim))
        self.register_buffer("memory_group", torch.zeros(0, dtype=torch.long))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # the memory's size is the zoo's, known only once saved: take the saved shapes
        for name in ("memory_latents", "memory_conditions", "memory_group"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def training_loss(self, latents: torch.Tensor, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.zeros((), device=latents.device)

    def fit_memory(self, latents: torch.Tensor, condition: torch.Tensor, group: torch.Tensor) -> None:
        self.memory_latents, self.memory_conditions, self.memory_group = latents, condition, group

    def sample(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not len(self.memory_latents):
            raise ConfigError("the nearest generator holds no experts: it must be trained (fit_memory) first")
        nearest = self.memory_group[torch.cdist(condition, self.memory_conditions).argmin(dim=1)]
        same = (self.memory_group[None] == nearest[:, None]).float()
        pick = torch.multinomial(same.cpu(), 1, generator=generator)[:, 0].to(condition.device)
        return self.memory_latents[pick]
