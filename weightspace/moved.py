"""Old module paths, kept importable with a DeprecationWarning that names the new path.

The package is grouped by role (``data/``, ``zoo/``, ``pipeline/``, ``evaluate/``, ``bench/``); a
plugin or script written against a former flat module (``from weightspace.dataset import
load_dataset``) keeps working, and is told where the name lives now. One table here instead of a
shim file per old module; :mod:`weightspace` installs the finder on import.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import types
import warnings
from typing import Any

MOVED = {
    "weightspace.dataset": ("weightspace.data.dataset",),
    "weightspace.simulation": ("weightspace.data.simulation",),
    "weightspace.trajectories": ("weightspace.data.trajectories",),
    "weightspace.gridded_import": ("weightspace.data.gridded",),
    "weightspace.trainer": ("weightspace.zoo.trainer",),
    "weightspace.evaluation": ("weightspace.evaluate.evaluation",),
    "weightspace.adaptation": ("weightspace.evaluate.adaptation",),
    "weightspace.memorization": ("weightspace.evaluate.memorization",),
    "weightspace.distill": ("weightspace.evaluate.distill",),
    "weightspace.encoding": ("weightspace.pipeline.encoding",),
    "weightspace.generation": ("weightspace.pipeline.generation",),
    "weightspace.run": ("weightspace.pipeline.config", "weightspace.pipeline.run", "weightspace.pipeline.stages"),
    "weightspace.matrix": ("weightspace.bench.matrix",),
    "weightspace.report": ("weightspace.bench.report",),
}
"""Old module -> the module(s) its names moved to, searched in order."""


class MovedModule(types.ModuleType):
    """An old module: each name is looked up where it moved, with a warning naming that place."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for target in MOVED[self.__name__]:
            module = importlib.import_module(target)
            if hasattr(module, name):
                message = f"{self.__name__}.{name} moved to {target}.{name}"
                warnings.warn(message, DeprecationWarning, stacklevel=2)
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


class MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module names of :data:`MOVED` (after every other finder: a real module wins)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return MovedModule(spec.name, f"Deprecated: moved to {', '.join(MOVED[spec.name])}.")

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: names are looked up on access."""
