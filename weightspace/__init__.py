"""weightspace: trained network weights as data.

The public API in one place::

    import weightspace as ws
    fno = ws.architecture("fno", hidden_channels=16)
    params = fno.init_params(8, seed=0)      # 8 networks, {name: [8, ...]}
    graph = fno.to_graph(params)              # WeightGraph, one node group per layer
    y = fno.functional(params, x)             # all 8 networks at once
    kf = ws.system("kolmogorov", "quick")      # a System with the quick profile's settings
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from weightspace.architecture import ArchitectureAdapter, Prediction  # noqa: E402
from weightspace.errors import WeightspaceError  # noqa: E402
from weightspace.graph import GraphNormalizer, GraphSpec, WeightGraph, apply_permutation  # noqa: E402
from weightspace.registry import Registry, default_registry  # noqa: E402
from weightspace.system import System  # noqa: E402


def architecture(name: str, **overrides: Any) -> ArchitectureAdapter:
    """The registered architecture ``name`` with its default config plus ``overrides``."""
    return default_registry().architecture(name, overrides)


def system(name: str, profile: str = "quick", **overrides: Any) -> System:
    """The registered system ``name`` with ``profile``'s settings plus ``overrides``."""
    return default_registry().system(name, profile, overrides)


__all__ = [
    "ArchitectureAdapter",
    "GraphNormalizer",
    "GraphSpec",
    "Prediction",
    "Registry",
    "System",
    "WeightGraph",
    "WeightspaceError",
    "__version__",
    "apply_permutation",
    "architecture",
    "default_registry",
    "system",
]
