import torch

from weightspace.system import frame_statistics
from weightspace_systems.navier_stokes import NavierStokes


def small(**overrides):
    settings = {"sim_resolution": 32, "resolution": 32, "burn_in": 2.0, "n_frames": 6, "n_seen": 3}
    return NavierStokes("quick", {**settings, **overrides})


def test_phase_is_a_translation():
    """Shifting s by m/n is a shift of the domain by m cells, so trajectories shift with it."""
    ns = small(n_phase=4)
    envs = ns.environments()  # phases 0, 0.25, 0.5, 0.75 per amplitude
    w0 = ns.initial_conditions(envs[0], 1, torch.Generator().manual_seed(0))  # [1, 1, 32, 32]
    base = ns.solver(envs[[1]]).solve(w0[:, 0].unsqueeze(0), 4, 1.0)  # s = 0.25
    shifted_env = envs[[2]]  # s = 0.5 = 0.25 + 8/32
    shifted = ns.solver(shifted_env).solve(w0[:, 0].roll(-8, dims=-1).unsqueeze(0), 4, 1.0)
    torch.testing.assert_close(shifted, base.roll(-8, dims=-1), atol=1e-9, rtol=1e-9)


def test_paper_viscosity_collapses_to_one_steady_state():
    """At nu = 0.01 every initial condition converges to the same field: why the default is 1e-3."""
    envs = torch.tensor([[0.2, 0.0]], dtype=torch.float64)
    for nu, collapsed in ((1e-2, True), (1e-3, False)):
        ns = small(nu=nu)
        w0 = ns.initial_conditions(envs[0], 2, torch.Generator().manual_seed(1))
        frames = ns.solver(envs).solve(w0[:, 0].unsqueeze(0), 2, 30.0)[0, :, -1]
        difference = float((frames[0] - frames[1]).norm() / frames[0].norm())
        assert (difference < 1e-3) == collapsed, (nu, difference)


def test_stronger_forcing_gives_more_energy_and_stays_finite():
    ns = small(n_amplitude=3, n_phase=1, n_seen=1, n_frames=11)
    traj = ns.simulate(torch.arange(3), 3, seed=0)
    assert torch.isfinite(traj).all()
    energy = frame_statistics(traj, ode=False)[..., 2].mean(dim=(1, 2))
    assert (energy.diff() > 0).all(), energy


def test_halving_the_time_step_changes_little():
    base = small()
    envs = base.environments()[[4]]
    w0 = base.initial_conditions(envs[0], 1, torch.Generator().manual_seed(2))[:, 0].unsqueeze(0)
    a = small(cfl=1.0).solver(envs).solve(w0, 6, 1.0)
    b = small(cfl=0.5).solver(envs).solve(w0, 6, 1.0)
    assert float((a - b).norm() / b.norm()) < 1e-3


def test_environment_grid_excludes_the_repeated_phase():
    envs = NavierStokes("paper").environments()
    assert envs.shape == (121, 2)
    assert float(envs[:, 1].max()) < 1.0 and float(envs[:, 1].min()) == 0.0
