"""weightspace plugin: the DynaDiff components (graph-vae, dit-diffusion, dynamics, stats and oracle prompters)."""

from weightspace.hookspecs import hookimpl
from weightspace_dynadiff.dit_diffusion import DiTDiffusion
from weightspace_dynadiff.graph_vae import GraphVAE
from weightspace_dynadiff.prompters import DynamicsPrompter, OraclePrompter, StatsPrompter


@hookimpl
def weightspace_encoders() -> list[type]:
    return [GraphVAE]


@hookimpl
def weightspace_generators() -> list[type]:
    return [DiTDiffusion]


@hookimpl
def weightspace_prompters() -> list[type]:
    return [DynamicsPrompter, StatsPrompter, OraclePrompter]
