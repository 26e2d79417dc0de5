"""weightspace plugin: a 2-D wavelet neural operator on ptwt (``wno``)."""

from weightspace.hookspecs import hookimpl
from weightspace_wno.adapter import WNOAdapter


@hookimpl
def weightspace_architectures() -> list[type]:
    return [WNOAdapter]
