"""Rollout metrics: a perfect predictor scores RMSE 0 and SSIM 1; errors and blow-ups are scored as such."""

import torch

import weightspace as ws
from weightspace.data.trajectories import ChannelScale
from weightspace.metrics import rollout_metrics, ssim


def _fields(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 6, 2, 16, 16, generator=g).cumsum(dim=2)  # [E, n, T, C, H, W]


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    x = torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ssim(x, x), torch.ones(4))
    noisy = [
        ssim(x + s * torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(1)), x).mean()
        for s in (0.1, 0.5, 2.0)
    ]
    assert 1 > noisy[0] > noisy[1] > noisy[2]
    torch.testing.assert_close(ssim(2 * x + 3, 2 * x + 3), torch.ones(4))  # invariant to the data range


def test_perfect_field_prediction():
    traj = _fields()
    m = rollout_metrics(traj, traj, ChannelScale.fit(traj, 3))
    assert m.rmse.shape == (2, 3) and m.rmse_per_step.shape == (2, 3, 5)
    assert m.rmse.abs().max() == 0
    torch.testing.assert_close(m.ssim_per_step, torch.ones(2, 3, 5))
    assert (m.valid_horizon == 5).all()


def test_rmse_is_on_normalized_channels():
    traj = _fields()
    scale = ChannelScale.fit(traj, 3)
    pred = traj.clone()
    pred[..., 1:, 0, :, :] += 0.5 * scale.std[0]  # half a standard deviation off in channel 0 only
    m = rollout_metrics(pred, traj, scale)
    torch.testing.assert_close(m.rmse, torch.full((2, 3), (0.25 / 2) ** 0.5))


def test_blown_up_prediction_scores_inf_and_no_valid_horizon():
    traj = _fields()
    pred = traj.clone()
    pred[0, 0, 3:] = float("nan")
    m = rollout_metrics(pred, traj, ChannelScale.fit(traj, 3))
    assert torch.isinf(m.rmse[0, 0]) and torch.isfinite(m.rmse[1]).all()
    assert m.valid_horizon[0, 0] == 2


def test_exact_lotka_volterra_solver_is_a_perfect_predictor():
    """Rolling out the system's own solver from frame 0 reproduces the test trajectories (RMSE ~ 0)."""
    system = ws.system("lotka-volterra", n_b=2, n_d=2, n_seen=2, n_frames=41)
    index = torch.tensor([0, 3])
    traj = system.simulate(index, 3, seed=0)
    replay = system.solve(system.environments()[index], traj[:, :, 0])
    m = rollout_metrics(replay.float(), traj.float(), ChannelScale.fit(traj.float(), 1))
    assert m.ssim_per_step is None
    assert m.rmse.max() < 1e-5
