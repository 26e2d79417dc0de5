"""Rollout metrics: RMSE on normalized states, SSIM of 2-D fields, and the valid horizon.

RMSE is computed per trajectory, pooled over predicted steps, channels and grid points, on states
normalized per channel (:class:`weightspace.data.trajectories.ChannelScale`). SSIM is the usual
Gaussian-window structural similarity (window 7, sigma 1.5, K1 0.01, K2 0.03; Wang et al. 2004)
per channel and frame with the target frame's value range as data range, averaged over channels.
The valid horizon is the number of leading predicted steps whose SSIM stays above a threshold
(0.8). Everything is batched over any leading axes (experts, trajectories); :func:`rollout_experts`
rolls experts out on their environments' trajectories and scores them.
:func:`observation_residual` scores how well networks reproduce a few observed frames: how
gradient-free adaptation picks among candidates (generated experts, or zoo experts for retrieval).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from weightspace.architecture import ArchitectureAdapter, Prediction
from weightspace.data.trajectories import ChannelScale
from weightspace.graph import Params

SSIM_WINDOW = 7
SSIM_SIGMA = 1.5
VALID_SSIM = 0.8


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM of images ``[..., H, W]`` against reference images ``y`` (same shape); returns ``[...]``.

    The data range is the reference image's max - min (1 where the reference is constant)."""
    lead = x.shape[:-2]
    x, y = x.reshape(-1, 1, *x.shape[-2:]).double(), y.reshape(-1, 1, *y.shape[-2:]).double()
    coords = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    g = (g / g.sum()).to(x.device)
    window = (g[:, None] * g[None, :])[None, None]
    data_range = (y.amax(dim=(-2, -1)) - y.amin(dim=(-2, -1))).clamp_min(1e-12)
    data_range = torch.where(data_range > 1e-12, data_range, torch.ones_like(data_range))[..., None, None]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(dim=(-3, -2, -1)).float().reshape(lead)


@dataclass(frozen=True)
class RolloutMetrics:
    """Per-trajectory metrics of rollouts with leading axes ``[...]`` (e.g. environments, trajectories)."""

    rmse: torch.Tensor
    """``[...]``: RMSE over all predicted steps, channels and grid points."""
    rmse_per_step: torch.Tensor
    """``[..., T - 1]``: RMSE of each predicted step."""
    ssim_per_step: torch.Tensor | None
    """``[..., T - 1]``: SSIM averaged over channels (2-D fields only)."""
    valid_horizon: torch.Tensor | None
    """``[...]``: leading steps with SSIM above 0.8 (2-D fields only)."""


def rollout_metrics(prediction: torch.Tensor, target: torch.Tensor, scale: ChannelScale) -> RolloutMetrics:
    """Metrics of ``prediction`` vs ``target``, both ``[..., T, *state]`` with frame 0 the shared initial
    state (excluded from every metric). Non-finite predictions give inf RMSE and zero SSIM."""
    state_ndim = scale.mean.dim()
    time_axis, n_frames = -state_ndim - 1, prediction.shape[-state_ndim - 1]
    pred = scale.normalize(prediction.narrow(time_axis, 1, n_frames - 1))
    true = scale.normalize(target.narrow(time_axis, 1, n_frames - 1))
    finite = torch.isfinite(pred)
    sq = torch.where(finite, (pred - true) ** 2, torch.full_like(pred, torch.inf))
    per_step = sq.flatten(-state_ndim).mean(dim=-1)
    rmse = per_step.mean(dim=-1).sqrt()
    if state_ndim != 3:
        return RolloutMetrics(rmse, per_step.sqrt(), None, None)
    s = ssim(torch.nan_to_num(pred, nan=0.0, posinf=0.0, neginf=0.0), true).mean(dim=-1)
    s = torch.where(finite.flatten(-3).all(dim=-1), s, torch.zeros_like(s))
    valid = (s > VALID_SSIM).long().cumprod(dim=-1).sum(dim=-1)
    return RolloutMetrics(rmse, per_step.sqrt(), s, valid)


def rollout_experts(
    adapter: ArchitectureAdapter,
    params: Params,
    trajectories: torch.Tensor,
    scale: ChannelScale,
    dt: float,
    expert_batch: int = 16,
) -> RolloutMetrics:
    """Metrics of expert e predicting trajectories ``[E, n, T, *state]`` of environment e from frame 0."""
    parts = []
    n_envs, n_steps = trajectories.shape[0], trajectories.shape[2] - 1
    with torch.no_grad():
        for lo in range(0, n_envs, expert_batch):
            idx = slice(lo, lo + expert_batch)
            traj = trajectories[idx]
            pred = adapter.rollout({k: v[idx] for k, v in params.items()}, traj[:, :, 0], n_steps, dt)
            parts.append(rollout_metrics(pred, traj, scale))

    def cat(name: str) -> torch.Tensor | None:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else torch.cat(values)

    return RolloutMetrics(cat("rmse"), cat("rmse_per_step"), cat("ssim_per_step"), cat("valid_horizon"))


def observation_residual(
    adapter: ArchitectureAdapter, params: Params, observed: torch.Tensor, scale: ChannelScale, dt: float
) -> torch.Tensor:
    """Normalized MSE ``[N]`` of N networks reproducing their observed frames ``[N, L, *state]``
    (raw, L >= 2): one-step operators predict frame t+1 from frame t; vector fields integrate from
    the first frame. Non-finite predictions score inf."""
    if observed.shape[1] < 2:
        return torch.zeros(observed.shape[0])
    if adapter.prediction is Prediction.ONE_STEP:
        pred = adapter.functional(params, observed[:, :-1])
    else:
        pred = adapter.rollout(params, observed[:, :1], observed.shape[1] - 1, dt)[:, 0, 1:]
    residual = (scale.normalize(pred) - scale.normalize(observed[:, 1:])).pow(2).flatten(1).mean(dim=1)
    return torch.where(torch.isfinite(residual), residual, torch.full_like(residual, torch.inf))
