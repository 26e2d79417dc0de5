"""weightspace plugin: the dynamical systems of the reference paper, and ``gridded`` (imported data)."""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_systems() -> list[Lazy]:
    return [
        Lazy("lotka-volterra", "weightspace_systems.lotka_volterra:LotkaVolterra"),
        Lazy("lambda-omega", "weightspace_systems.lambda_omega:LambdaOmega"),
        Lazy("kolmogorov", "weightspace_systems.kolmogorov:Kolmogorov"),
        Lazy("navier-stokes", "weightspace_systems.navier_stokes:NavierStokes"),
        Lazy("cylinder-flow", "weightspace_systems.cylinder_flow:CylinderFlow"),
        Lazy("gridded", "weightspace_systems.gridded:Gridded"),
    ]
