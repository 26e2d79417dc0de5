"""The widths an MLP prompter is built from, shared by prompters of different plugins.

A prompter's condition vector has ``dim`` features (the generators' ``condition_dim``) and its MLPs
``hidden`` features; prompters that read other things of the frames (physical statistics, moments)
share these options so that they can replace one another in a run config.
"""

from __future__ import annotations

from dataclasses import dataclass

from weightspace.config import require_positive


@dataclass(frozen=True)
class PrompterConfig:
    dim: int = 64
    """Width of the condition vector."""
    hidden: int = 64

    def __post_init__(self) -> None:
        require_positive(self, "dim", "hidden")
