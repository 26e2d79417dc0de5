"""SINDy distillation recovers the polynomial equations a vector-field expert computes."""

import pytest
import torch

import weightspace as ws
from weightspace.distill import compare_terms, distill_vector_field
from weightspace.errors import ConfigError


def test_distill_recovers_a_linear_vector_field_computed_exactly_by_an_mlp():
    """relu(x) - relu(-x) = x, so a one-hidden-layer ReLU MLP with W1 = [I; -I], W2 = [A, -A] computes
    dx/dt = A x exactly: SINDy must return A and nothing else."""
    adapter = ws.architecture("mlp-node", hidden_width=4, n_hidden_layers=1, activation="relu")
    a = torch.tensor([[-0.3, 0.8], [-0.6, -0.2]])
    eye = torch.eye(2)
    params = {
        "layers.0.weight": torch.cat([eye, -eye]),
        "layers.0.bias": torch.zeros(4),
        "layers.1.weight": torch.cat([a, -a], dim=1),
        "layers.1.bias": torch.zeros(2),
    }
    x0 = adapter.example_input(8, torch.Generator().manual_seed(0))
    distilled = distill_vector_field(adapter, params, x0, 40, 0.1, ["prey", "predator"])
    truth = {"prey": {"prey": -0.3, "predator": 0.8}, "predator": {"prey": -0.6, "predator": -0.2}}
    rows = compare_terms(distilled, truth)
    assert {(r["state"], r["term"]) for r in rows} == {(s, t) for s in truth for t in truth[s]}
    for row in rows:
        assert row["recovered"] == pytest.approx(row["true"], abs=1e-4)
    assert distilled.to_dict()["coefficients"]["prey"] == pytest.approx(truth["prey"], abs=1e-4)


def test_distill_refuses_operators():
    fno = ws.architecture("fno", in_channels=1, out_channels=1, hidden_channels=4, n_modes=(2, 2), grid_size=(8, 8))
    params = {k: v[0] for k, v in fno.init_params(1).items()}
    with pytest.raises(ConfigError, match="vector field"):
        distill_vector_field(fno, params, torch.zeros(2, 1, 8, 8), 3, 0.1, ["u"])
