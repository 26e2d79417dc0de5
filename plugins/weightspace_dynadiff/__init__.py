"""weightspace plugin: the DynaDiff components (graph-vae, dit-diffusion, dynamics, stats and oracle prompters)."""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_encoders() -> list[Lazy]:
    return [Lazy("graph-vae", "weightspace_dynadiff.graph_vae:GraphVAE")]


@hookimpl
def weightspace_generators() -> list[Lazy]:
    return [Lazy("dit-diffusion", "weightspace_dynadiff.dit_diffusion:DiTDiffusion")]


@hookimpl
def weightspace_prompters() -> list[Lazy]:
    return [
        Lazy("dynamics", "weightspace_dynadiff.prompters:DynamicsPrompter"),
        Lazy("stats", "weightspace_dynadiff.prompters:StatsPrompter"),
        Lazy("oracle", "weightspace_dynadiff.prompters:OraclePrompter"),
    ]
