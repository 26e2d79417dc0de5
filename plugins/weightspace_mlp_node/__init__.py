"""weightspace plugin: an MLP neural ODE vector field (``mlp-node``)."""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_architectures() -> list[Lazy]:
    return [Lazy("mlp-node", "weightspace_mlp_node.adapter:MLPNodeAdapter")]
