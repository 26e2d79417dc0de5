"""weightspace plugin: a 2-D wavelet neural operator on ptwt (``wno``)."""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_architectures() -> list[Lazy]:
    return [Lazy("wno", "weightspace_wno.adapter:WNOAdapter")]
