"""Symbolic distillation of a vector-field expert: which equations does a (generated) network encode?

The expert is integrated from several initial states (the architecture's example inputs, e.g. the
Lotka-Volterra initial-condition box) over a system's horizon, and its own vector field is
evaluated along the way; SINDy (pysindy, sequentially thresholded least squares over a polynomial
library) then fits sparse polynomial equations to those (state, derivative) pairs. Using the
network's exact derivatives rather than finite differences of its trajectory leaves the fit with
only the network's own error. Where the system knows its true equations
(:meth:`weightspace.system.System.polynomial_coefficients`) they are compared term by term.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from weightspace.architecture import ArchitectureAdapter, Prediction
from weightspace.errors import ConfigError, WeightError
from weightspace.graph import Params

MAX_DEGREE = 6
"""The largest polynomial degree: the library grows as (D + degree choose degree) terms, and beyond a
few the least-squares fit is ill-conditioned long before it runs out of memory."""


@dataclass(frozen=True)
class Distilled:
    """Sparse polynomial equations ``d state_i / dt = sum_j coefficients[i, j] * features[j]``."""

    state_names: tuple[str, ...]
    features: tuple[str, ...]
    coefficients: np.ndarray
    """``[D, F]``."""
    equations: tuple[str, ...]

    def coefficient(self, state: str, term: str) -> float:
        return float(self.coefficients[self.state_names.index(state), self.features.index(term)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "equations": {s: e for s, e in zip(self.state_names, self.equations)},
            "coefficients": {
                s: {f: float(c) for f, c in zip(self.features, row) if c != 0}
                for s, row in zip(self.state_names, self.coefficients)
            },
        }


def distill_vector_field(
    adapter: ArchitectureAdapter,
    params: Params,
    initial_states: torch.Tensor,
    n_steps: int,
    dt: float,
    state_names: Sequence[str],
    degree: int = 2,
    threshold: float = 0.05,
) -> Distilled:
    """SINDy equations of one vector-field expert (``params`` without a batch axis), from
    trajectories integrated from ``initial_states`` ``[M, D]`` for ``n_steps`` steps of ``dt``."""
    import pysindy as ps

    if adapter.prediction is not Prediction.VECTOR_FIELD:
        raise ConfigError(f"{adapter.name} is a one-step operator; symbolic distillation needs a vector field")
    if not 1 <= degree <= MAX_DEGREE:
        raise ConfigError(f"the polynomial degree must be in [1, {MAX_DEGREE}], got {degree}")
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ConfigError(f"the sparsity threshold must be a finite number >= 0, got {threshold}")
    if n_steps < 1 or not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ConfigError(f"the rollout needs n_steps >= 1 and a finite dt > 0, got {n_steps} steps of {dt}")
    if initial_states.dim() != 2 or len(initial_states) == 0:
        raise ConfigError(f"initial states must be [M >= 1, D], got {list(initial_states.shape)}")
    if len(state_names) != initial_states.shape[1]:
        raise ConfigError(f"{len(state_names)} state names for states of dimension {initial_states.shape[1]}")
    batched = {k: v[None] for k, v in params.items()}
    with torch.no_grad():
        states = adapter.rollout(batched, initial_states, n_steps, dt)[0]  # [M, T, D]
        derivatives = adapter.functional(batched, states.flatten(0, 1))[0].view_as(states)
    if not (torch.isfinite(states).all() and torch.isfinite(derivatives).all()):
        raise WeightError("the expert's trajectories blow up (non-finite states): nothing to distill")
    model = ps.SINDy(optimizer=ps.STLSQ(threshold=threshold), feature_library=ps.PolynomialLibrary(degree=degree))
    x = [s.double().numpy() for s in states]
    model.fit(x, t=dt, x_dot=[d.double().numpy() for d in derivatives], feature_names=list(state_names))
    return Distilled(
        tuple(state_names),
        tuple(model.get_feature_names()),
        np.asarray(model.coefficients()),
        tuple(model.equations(precision=3)),
    )


def compare_terms(distilled: Distilled, truth: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Every term that is in the true equations or was recovered: ``{state, term, recovered, true}``."""
    rows = []
    for state in distilled.state_names:
        true_terms = truth.get(state, {})
        for term in distilled.features:
            recovered = distilled.coefficient(state, term)
            if recovered != 0 or term in true_terms:
                rows.append({"state": state, "term": term, "recovered": recovered, "true": true_terms.get(term, 0.0)})
    return rows
