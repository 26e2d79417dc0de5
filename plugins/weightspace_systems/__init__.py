"""weightspace plugin: the dynamical systems of the reference paper, and ``gridded`` (imported data)."""

from weightspace.hookspecs import hookimpl
from weightspace_systems.cylinder_flow import CylinderFlow
from weightspace_systems.gridded import Gridded
from weightspace_systems.kolmogorov import Kolmogorov
from weightspace_systems.lambda_omega import LambdaOmega
from weightspace_systems.lotka_volterra import LotkaVolterra
from weightspace_systems.navier_stokes import NavierStokes


@hookimpl
def weightspace_systems() -> list[type]:
    return [LotkaVolterra, LambdaOmega, Kolmogorov, NavierStokes, CylinderFlow, Gridded]
