"""The plugin contract: one pluggy hook per kind of component.

Every hook takes no arguments and returns a list of classes, each with a unique ``name`` class
attribute. weightspace's own components are registered exactly like a third party's: a package
exposes functions marked with :data:`hookimpl` and names itself in the ``weightspace`` entry-point
group of its ``pyproject.toml``. See ``docs/plugins.md``.
"""

from __future__ import annotations

import pluggy

PROJECT = "weightspace"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

KINDS = ("architectures", "systems", "encoders", "generators", "prompters")
"""The kinds of component, in the order the CLI lists them; each has a hook ``weightspace_<kind>``."""


@hookspec
def weightspace_architectures() -> list[type]:
    """Expert architectures: subclasses of :class:`weightspace.architecture.ArchitectureAdapter`."""


@hookspec
def weightspace_systems() -> list[type]:
    """Dynamical systems that simulate trajectories over a grid of environments."""


@hookspec
def weightspace_encoders() -> list[type]:
    """Encoders mapping weight graphs to latents and back (e.g. the graph VAE)."""


@hookspec
def weightspace_generators() -> list[type]:
    """Conditional generative models over latents (e.g. latent diffusion, flow matching)."""


@hookspec
def weightspace_prompters() -> list[type]:
    """Prompters turning a few observed frames of an environment into a conditioning vector."""
