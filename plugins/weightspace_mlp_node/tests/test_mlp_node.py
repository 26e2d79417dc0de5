import torch
from torchdiffeq import odeint

from weightspace_mlp_node.adapter import MLPNodeAdapter, MLPNodeConfig


def test_ensemble_rollout_equals_one_odeint_per_network():
    adapter = MLPNodeAdapter(MLPNodeConfig(hidden_width=16, substeps=2))
    params = adapter.init_params(4, seed=0)
    x0 = adapter.example_input(5, torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = adapter.rollout(params, x0, n_steps=10, dt=0.1)
        for i, module in enumerate(adapter.modules(params)):
            times = torch.arange(11) * 0.1
            single = odeint(lambda _t, y, m=module: m(y), x0, times, method="rk4", options={"step_size": 0.05})
            torch.testing.assert_close(batched[i], single.movedim(0, 1), rtol=1e-5, atol=1e-6)


def test_fixed_step_rk4_converges_to_the_adaptive_solution():
    """Weights scaled up 4x: a freshly initialized field is so slow that one RK4 step per frame is
    already exact to float32 round-off (both errors 3.6e-6 at scale 1), which would test nothing.
    At 4x one step is off by about 5e-5 and four substeps by about 3e-6."""
    initial = MLPNodeAdapter(MLPNodeConfig(hidden_width=16)).init_params(2, seed=3)
    params = {k: 4 * v for k, v in initial.items()}
    x0 = torch.tensor([[1.0, 2.0], [2.5, 1.5]])
    with torch.no_grad():
        reference = MLPNodeAdapter(MLPNodeConfig(hidden_width=16, solver="dopri5", tolerance=1e-9)).rollout(
            params, x0, 20, 0.1
        )
        coarse = MLPNodeAdapter(MLPNodeConfig(hidden_width=16, substeps=1)).rollout(params, x0, 20, 0.1)
        fine = MLPNodeAdapter(MLPNodeConfig(hidden_width=16, substeps=4)).rollout(params, x0, 20, 0.1)
    err_coarse = float((coarse - reference).abs().max())
    err_fine = float((fine - reference).abs().max())
    assert err_fine < 1e-5
    assert err_fine < err_coarse / 4
