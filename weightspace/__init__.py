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

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from weightspace.moved import MovedFinder

__version__ = "0.1.0"

if TYPE_CHECKING:
    from weightspace.architecture import ArchitectureAdapter, Prediction
    from weightspace.errors import WeightspaceError
    from weightspace.graph import GraphNormalizer, GraphSpec, WeightGraph, apply_permutation
    from weightspace.registry import Registry, default_registry
    from weightspace.system import System

# Imported on first use (PEP 562), so that `import weightspace.hookspecs` by a plugin, and the
# command line's start, do not pay for torch.
_LAZY = {
    "ArchitectureAdapter": "weightspace.architecture",
    "Prediction": "weightspace.architecture",
    "WeightspaceError": "weightspace.errors",
    "GraphNormalizer": "weightspace.graph",
    "GraphSpec": "weightspace.graph",
    "WeightGraph": "weightspace.graph",
    "apply_permutation": "weightspace.graph",
    "Registry": "weightspace.registry",
    "default_registry": "weightspace.registry",
    "System": "weightspace.system",
}


class _Package(types.ModuleType):
    """Keeps ``weightspace.architecture`` and ``weightspace.system`` the helper functions below:
    importing the submodules of the same names later would otherwise rebind them to the modules
    (they stay importable by their full names, ``from weightspace.system import System``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("architecture", "system") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
sys.meta_path.append(MovedFinder())  # former module paths (weightspace.dataset, ...) still import


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'weightspace' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def architecture(name: str, **overrides: Any) -> ArchitectureAdapter:
    """The registered architecture ``name`` with its default config plus ``overrides``."""
    from weightspace.registry import default_registry

    return default_registry().architecture(name, overrides)


def system(name: str, profile: str = "quick", **overrides: Any) -> System:
    """The registered system ``name`` with ``profile``'s settings plus ``overrides``."""
    from weightspace.registry import default_registry

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
