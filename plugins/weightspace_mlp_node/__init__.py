"""weightspace plugin: an MLP neural ODE vector field (``mlp-node``)."""

from weightspace.hookspecs import hookimpl
from weightspace_mlp_node.adapter import MLPNodeAdapter


@hookimpl
def weightspace_architectures() -> list[type]:
    return [MLPNodeAdapter]
