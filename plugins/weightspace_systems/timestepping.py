"""Integrating-factor RK4 (IFRK4), the time stepper of the spectral PDE systems.

For d(state)/dt = L state + N(state) with a diagonal, non-positive linear operator L (diffusion,
drag) the factor exp(L t) is applied exactly and N is integrated with classical RK4, so the stiff
linear part sets no step limit and cannot amplify anything.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def ifrk4_step(
    state: torch.Tensor, h: float, e_half: torch.Tensor, nonlinear: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """One step of length ``h``; ``e_half`` is exp(L h / 2), broadcastable to ``state``."""
    e_full = e_half**2
    k1 = nonlinear(state)
    k2 = nonlinear(e_half * (state + h / 2 * k1))
    k3 = nonlinear(e_half * state + h / 2 * k2)
    k4 = nonlinear(e_full * state + h * e_half * k3)
    return e_full * state + h / 6 * (e_full * k1 + 2 * e_half * (k2 + k3) + k4)
