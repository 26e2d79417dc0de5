import math

import pytest
import torch

from weightspace.config import config_to_dict
from weightspace.system import frame_statistics
from weightspace_systems.grid import spectral_downsample
from weightspace_systems.kolmogorov import Kolmogorov
from weightspace_systems.vorticity import VorticitySolver


def small(**overrides):
    settings = {"n_re": 5, "n_seen": 2, "sim_resolution": 32, "resolution": 32, "burn_in": 5.0, "n_frames": 11}
    return Kolmogorov("quick", {**settings, **overrides})


def test_laminar_state_is_steady():
    k = small()
    envs = k.environments()[[0, 4]]
    w0 = torch.stack([k.laminar_state(float(re), 32) for re in envs[:, 0]]).view(2, 1, 1, 32, 32)
    frames = k.solver(envs).solve(w0[:, :, 0], n_frames=6, dt=0.2)
    torch.testing.assert_close(frames, w0[:, :, 0].unsqueeze(2).expand_as(frames), atol=1e-9, rtol=0)


def test_unforced_mode_decays_at_the_linear_rate():
    """Without forcing a single Fourier mode (an exact Navier-Stokes solution) decays as exp(-(nu k^2 + drag) t)."""
    n, re, drag = 32, 80.0, 0.1
    c = -math.pi + 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    y, x = torch.meshgrid(c, c, indexing="ij")
    w0 = torch.sin(2 * x + y).view(1, 1, n, n)
    solver = VorticitySolver(n, 2 * math.pi, torch.tensor([1 / re]), drag, torch.zeros(1, n, n))
    frames = solver.solve(w0, n_frames=6, dt=0.5)
    expected = torch.exp(-torch.tensor((5 / re + drag) * 0.5 * 5, dtype=torch.float64))
    assert float(frames[0, 0, -1].abs().max()) == pytest.approx(float(expected), rel=1e-8)


def test_small_perturbation_of_the_laminar_state_decays_at_low_re():
    """At Re = 5 (far below the instability) a perturbation relaxes back to the laminar flow."""
    k = small(re_range=(5.0, 5.0), n_re=3, n_seen=1)
    envs = k.environments()[:1]
    laminar = k.laminar_state(5.0, 32)
    noise = 0.1 * k.initial_conditions(envs[0], 1, torch.Generator().manual_seed(0))[:, 0]
    frames = k.solver(envs).solve((laminar + noise).unsqueeze(0), n_frames=11, dt=1.0)
    deviation = (frames[0, 0] - laminar).flatten(1).norm(dim=1)
    assert deviation[-1] < 0.05 * deviation[0]


def test_extreme_environments_stay_finite_and_bounded():
    k = small(n_frames=21)
    index = torch.tensor([0, 4])  # Re = 50 and Re = 250
    traj = k.simulate(index, 2, seed=0)
    assert traj.shape == (2, 2, 21, 1, 32, 32) and torch.isfinite(traj).all()
    assert float(traj.abs().max()) < 50


def test_halving_the_time_step_changes_little():
    k = small()
    envs = k.environments()[[2]]
    x0 = k.initial_conditions(envs[0], 1, torch.Generator().manual_seed(3)).unsqueeze(0)
    a = Kolmogorov("quick", {**config_to_dict(k.settings), "cfl": 1.0}).solver(envs).solve(x0[:, :, 0], 6, 0.2)
    b = Kolmogorov("quick", {**config_to_dict(k.settings), "cfl": 0.5}).solver(envs).solve(x0[:, :, 0], 6, 0.2)
    relative = float((a - b).norm() / b.norm())
    assert relative < 1e-3


def test_higher_re_gives_more_small_scale_activity():
    k = small(n_frames=21)
    traj = k.simulate(torch.arange(5), 3, seed=1)
    enstrophy = frame_statistics(traj, ode=False)[..., 3].mean(dim=(1, 2))
    assert (enstrophy.diff() > 0).all(), enstrophy


def test_spectral_downsample_keeps_resolved_modes():
    m, n = 64, 32
    c = 2 * math.pi * torch.arange(m, dtype=torch.float64) / m
    y, x = torch.meshgrid(c, c, indexing="ij")
    fine = torch.cos(3 * x) + torch.sin(2 * y - 5 * x)
    coarse = spectral_downsample(fine, n)
    torch.testing.assert_close(coarse, fine[::2, ::2], atol=1e-12, rtol=0)
