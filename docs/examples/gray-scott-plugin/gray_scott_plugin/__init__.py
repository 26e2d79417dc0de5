"""A third-party weightspace plugin for two-channel fields: the ``gray-scott`` reaction-diffusion
system and ``residual-cnn``, a small convolutional one-step operator whose channels and grid follow
the data.

Both are returned as :class:`~weightspace.hookspecs.Lazy` references, so ``weightspace plugins`` lists
them without importing torch; the modules are imported when a component is first used.
"""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_systems() -> list[Lazy]:
    return [Lazy("gray-scott", "gray_scott_plugin.system:GrayScott")]


@hookimpl
def weightspace_architectures() -> list[Lazy]:
    return [Lazy("residual-cnn", "gray_scott_plugin.cnn:ResidualCNN")]
