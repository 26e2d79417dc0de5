import torch

from weightspace_systems.lambda_omega import LambdaOmega


def small(**overrides):
    settings = {"n_beta": 3, "n_seen": 1, "n_frames": 11, "dt": 0.2, "resolution": 32, "sim_resolution": 64}
    return LambdaOmega("quick", {**settings, **overrides})


def test_uniform_oscillation_rotates_at_minus_beta():
    """A spatially uniform state on the limit cycle (A = 1) is an exact solution: u + i v = exp(-i beta t)."""
    lo = small(burn_in=0.0)
    envs = lo.environments()
    x0 = torch.zeros(len(envs), 1, 2, 64, 64, dtype=torch.float64)
    x0[:, :, 0] = 1.0
    traj = lo.solve(envs, x0)
    t = torch.arange(lo.settings.n_frames) * lo.settings.dt
    for e, beta in enumerate(envs[:, 0].tolist()):
        z = torch.complex(traj[e, 0, :, 0, 0, 0].double(), traj[e, 0, :, 1, 0, 0].double())
        torch.testing.assert_close(z, torch.exp(-1j * beta * t.double()), atol=1e-5, rtol=0)


def test_spirals_stay_on_the_limit_cycle_and_finite_for_extreme_beta():
    lo = small(n_frames=21)
    traj = lo.simulate(torch.tensor([0, 2]), 2, seed=0)
    assert torch.isfinite(traj).all()
    amplitude = traj.pow(2).sum(dim=3).sqrt()
    assert float(amplitude.max()) < 1.2


def test_halving_the_step_changes_little():
    a = small(max_step=0.05).simulate(torch.tensor([1]), 1, seed=3)
    b = small(max_step=0.025).simulate(torch.tensor([1]), 1, seed=3)
    assert float((a - b).abs().max()) < 1e-4


def test_simulation_grid_converges_at_the_saved_resolution():
    """The quick profile simulates at 128 and saves 32: its frames agree with a 256 solve to 0.05
    (a 64 solve is off by about 0.1: the phase drift of coarse spirals)."""
    runs = {n: small(sim_resolution=n).simulate(torch.tensor([1]), 1, seed=4) for n in (64, 128, 256)}
    error_128 = float((runs[128] - runs[256]).abs().max())
    error_64 = float((runs[64] - runs[256]).abs().max())
    assert error_128 < 0.05 and error_128 < error_64


def test_larger_beta_turns_the_spiral_faster():
    lo = small()
    traj = lo.simulate(torch.arange(3), 2, seed=1)  # beta = 1.0, 1.25, 1.5
    z = torch.complex(traj[:, :, :, 0].double(), traj[:, :, :, 1].double())
    # mean phase advance per frame over the domain, away from spiral cores
    step = (z[:, :, 1:] * z[:, :, :-1].conj()).angle()
    rate = -step.mean(dim=(1, 2, 3, 4)) / lo.settings.dt
    assert (rate.diff() > 0).all(), rate
    # slower than the limit cycle's beta: amplitudes below 1 near the cores turn at beta * A^2
    assert ((rate > 0.3 * lo.environments()[:, 0]) & (rate < lo.environments()[:, 0])).all(), rate
