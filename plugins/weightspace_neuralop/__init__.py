"""weightspace plugin: neuraloperator's FNO and UNO as expert architectures (``fno``, ``uno``)."""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_architectures() -> list[Lazy]:
    return [Lazy("fno", "weightspace_neuralop.fno:FNOAdapter"), Lazy("uno", "weightspace_neuralop.uno:UNOAdapter")]
