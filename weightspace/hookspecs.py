"""The plugin contract: one pluggy hook per kind of component.

Every hook takes no arguments and returns a list of classes, each with a unique ``name`` class
attribute, or :class:`Lazy` references to them. weightspace's own components are registered exactly
like a third party's: a package exposes functions marked with :data:`hookimpl` and names itself in
the ``weightspace`` entry-point group of its ``pyproject.toml``. See ``docs/plugins.md``.

This module is imported by every plugin before anything else, so it imports nothing heavy.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pluggy

PROJECT = "weightspace"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

KINDS = ("architectures", "systems", "encoders", "generators", "prompters", "methods")
"""The kinds of component, in the order the CLI lists them; each has a hook ``weightspace_<kind>``."""


@dataclass(frozen=True)
class Lazy:
    """A component named now and imported when first used: ``Lazy("fno", "my_plugin.fno:FNOAdapter")``.

    Listing plugins (``weightspace plugins``, ``--help``, config checks) then costs no import of the
    component's module, which for most components means no import of torch (about 2 s). The
    registry checks on import that the class's own ``name`` is the one declared here.
    """

    name: str
    target: str
    """``"package.module:ClassName"``."""

    def load(self) -> type:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


@hookspec
def weightspace_architectures() -> list[type | Lazy]:
    """Expert architectures: subclasses of :class:`weightspace.architecture.ArchitectureAdapter`."""


@hookspec
def weightspace_systems() -> list[type | Lazy]:
    """Dynamical systems that simulate trajectories over a grid of environments."""


@hookspec
def weightspace_encoders() -> list[type | Lazy]:
    """Encoders mapping weight graphs to latents and back (e.g. the graph VAE)."""


@hookspec
def weightspace_generators() -> list[type | Lazy]:
    """Conditional generative models over latents (e.g. latent diffusion, flow matching)."""


@hookspec
def weightspace_prompters() -> list[type | Lazy]:
    """Prompters turning a few observed frames of an environment into a conditioning vector."""


@hookspec
def weightspace_methods() -> list[type | Lazy]:
    """Adaptation methods evaluated side by side: subclasses of :class:`weightspace.method.Method`."""
