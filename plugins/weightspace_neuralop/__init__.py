"""weightspace plugin: neuraloperator's FNO and UNO as expert architectures (``fno``, ``uno``)."""

from weightspace.hookspecs import hookimpl
from weightspace_neuralop.fno import FNOAdapter
from weightspace_neuralop.uno import UNOAdapter


@hookimpl
def weightspace_architectures() -> list[type]:
    return [FNOAdapter, UNOAdapter]
