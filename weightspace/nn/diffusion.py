"""The diffusion objective and the DDIM sampler, apart from any denoiser network.

A :class:`NoiseSchedule` holds the cumulative signal levels alpha-bar of ``train_steps`` discrete
timesteps (cosine, Nichol & Dhariwal 2021, or linear betas, Ho et al. 2020). ``diffusion_loss`` is
the simple DDPM loss for a denoiser that predicts the noise (``epsilon``, Ho et al. 2020), the clean
sample (``x0``) or the velocity ``v = sqrt(a) eps - sqrt(1 - a) x0`` (Salimans & Ho 2022), whose
targets stay well scaled at every noise level; ``ddim_sample`` is the deterministic DDIM sampler
(Song et al. 2021, eta = 0) over an evenly spaced subset of timesteps for any of the three.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(x_t [B, ...], t [B]) -> prediction [B, ...]`` (the condition already bound)."""

Prediction = Literal["epsilon", "x0", "v"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)


class NoiseSchedule:
    def __init__(self, kind: str, train_steps: int) -> None:
        if kind == "cosine":
            s = 0.008
            steps = torch.arange(train_steps + 1, dtype=torch.float64) / train_steps
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            alpha_bar = (f / f[0])[1:]
            betas = (1 - alpha_bar / torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])).clamp(max=0.999)
        elif kind == "linear":
            betas = torch.linspace(1e-4, 0.02, train_steps, dtype=torch.float64)
        else:
            raise ValueError(f"unknown noise schedule {kind!r}; schedules: cosine, linear")
        self.train_steps = train_steps
        self.alpha_bar = torch.cumprod(1 - betas, dim=0).float()


def diffusion_loss(
    denoise: Denoiser,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    prediction: Prediction = "epsilon",
) -> torch.Tensor:
    """E_t,eps ||target - denoise(sqrt(a_t) x0 + sqrt(1 - a_t) eps, t)||^2 with uniform t, the target
    being eps, x0 or v as ``prediction`` says."""
    t = torch.randint(schedule.train_steps, (x0.shape[0],), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    a = schedule.alpha_bar.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1)))
    target = {"epsilon": noise, "x0": x0, "v": a.sqrt() * noise - (1 - a).sqrt() * x0}[prediction]
    return (denoise(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - target).pow(2).mean()


def clean_and_noise(
    output: torch.Tensor, x: torch.Tensor, a: torch.Tensor, prediction: Prediction
) -> tuple[torch.Tensor, torch.Tensor]:
    """The estimates of x0 and of the noise implied by a denoiser's ``output`` at ``x`` (level ``a``)."""
    if prediction == "epsilon":
        return (x - (1 - a).sqrt() * output) / a.sqrt(), output
    if prediction == "x0":
        return output, (x - a.sqrt() * output) / (1 - a).sqrt()
    return a.sqrt() * x - (1 - a).sqrt() * output, (1 - a).sqrt() * x + a.sqrt() * output


def ddim_sample(
    denoise: Denoiser,
    shape: tuple[int, ...],
    schedule: NoiseSchedule,
    steps: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    clip: float | None = None,
    prediction: Prediction = "epsilon",
) -> torch.Tensor:
    """Deterministic DDIM from Gaussian noise drawn with ``generator``, in ``steps`` denoiser calls.

    ``clip`` bounds each step's estimate of x0 to [-clip, clip] (data at unit variance): at the
    noisiest steps alpha-bar is tiny and an imperfect noise estimate would otherwise blow x0 up."""
    x = torch.randn(shape, generator=generator).to(device)
    timesteps = torch.linspace(schedule.train_steps - 1, 0, steps).round().long().tolist()
    alpha_bar = schedule.alpha_bar.to(device)
    for i, t in enumerate(timesteps):
        a = alpha_bar[t]
        a_prev = alpha_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.ones((), device=device)
        x0, eps = clean_and_noise(denoise(x, torch.full((shape[0],), t, device=device)), x, a, prediction)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x
