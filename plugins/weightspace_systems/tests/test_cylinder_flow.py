import pytest
import torch

from weightspace.errors import ConfigError
from weightspace_systems.cylinder_flow import CylinderFlow, equilibrium, macroscopic, stream


def test_equilibrium_has_the_density_and_velocity_it_was_built_from():
    rho = 1 + 0.1 * torch.rand(2, 8, 6)
    u = 0.05 * torch.randn(2, 2, 8, 6)
    back_rho, back_u = macroscopic(equilibrium(rho, u))
    torch.testing.assert_close(back_rho, rho)
    torch.testing.assert_close(back_u, u, atol=1e-6, rtol=1e-5)


def test_streaming_conserves_mass_and_momentum_on_a_periodic_grid():
    f = torch.rand(1, 9, 8, 6)
    rho, u = macroscopic(f)
    rho2, u2 = macroscopic(stream(f))
    torch.testing.assert_close(rho2.sum(), rho.sum())
    torch.testing.assert_close((rho2.unsqueeze(1) * u2).sum(dim=(2, 3)), (rho.unsqueeze(1) * u).sum(dim=(2, 3)))


def test_environment_grid_scales_radii_to_the_channel():
    paper = CylinderFlow("paper")
    envs = paper.environments()
    assert envs.shape == (31 * 16, 2)
    assert float(envs[:, 1].min()) == 5.0 and float(envs[:, 1].max()) == 12.5  # on 128 x 64
    assert float((envs[:, 0] / (2 * envs[:, 1])).max()) <= 50  # Re / D, in cells
    with pytest.raises(ConfigError, match="dt counts lattice steps"):
        CylinderFlow("quick", {"dt": 2.5})


def test_extreme_environments_stay_stable():
    cf = CylinderFlow("quick", {"burn_in": 1.0, "n_frames": 11})
    envs = cf.environments()
    corners = torch.tensor([0, 2, 6, 8])  # Re 200 / 500 x r 5 / 12.5
    traj = cf.simulate(corners, 1, seed=0)
    assert traj.shape == (4, 1, 11, 2, 64, 128) and torch.isfinite(traj).all()
    assert float(traj.abs().max()) < 3 * cf.settings.inlet_speed
    solid = cf.obstacle(envs[corners, 1])  # [E, nx, ny]
    assert float(traj[0, 0, :, :, solid[0].T].abs().max()) == 0.0


@pytest.mark.slow
def test_the_wake_sheds_at_strouhal_about_0_2_harder_with_re_and_out_of_phase():
    cf = CylinderFlow("quick", {"n_frames": 121, "dt": 25})
    index = torch.tensor([0, 3, 6])  # r = 5 at Re = 200, 350, 500
    traj = cf.simulate(index, 2, seed=1)
    probe = traj[:, :, :, 1, 32, 64].double()  # transverse velocity in the near wake
    probe = probe - probe.mean(dim=2, keepdim=True)
    spectrum = torch.fft.rfft(probe, dim=2).abs()
    spectrum[..., 0] = 0
    freq = torch.fft.rfftfreq(probe.shape[2], d=cf.settings.dt)[spectrum.argmax(dim=2)]  # per lattice step
    strouhal = freq * 10 / cf.settings.inlet_speed  # D = 10 cells
    assert ((strouhal > 0.12) & (strouhal < 0.3)).all(), strouhal
    assert float((traj[:, 0] - traj[:, 1]).abs().max()) > 0.2 * cf.settings.inlet_speed  # different phases
    amplitude = probe.std(dim=2).mean(dim=1)  # wake oscillation grows with Re
    assert (amplitude.diff() > 0).all(), amplitude
