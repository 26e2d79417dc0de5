"""Prompters: the dynamics-informed ``dynamics`` prompter, its ``stats`` ablation, and the ``oracle``.

``dynamics`` (DynaDiff, section 3.4) has two branches over L observed, per-channel normalized frames:

- explicit: per-frame physical statistics (:func:`weightspace.system.frame_statistics`: spatial mean,
  variance, energy, enstrophy summed over channels; components and second moments for ODE states),
  their temporal mean and trend over the L frames, through an MLP (after a signed log to tame scales);
- implicit: each frame's 2-D FFT truncated to the ``modes`` lowest frequencies per axis (real and
  imaginary parts) through a GRU, whose final hidden state is kept. With ``spectrum = "shells"``
  the GRU reads, instead, spectra averaged over square wavenumber shells ``max(|kx|, |ky|) = k < modes``:
  each pair of channels' cross-spectrum within the frame and from the frame to the next (zero lag
  and lag one, real and imaginary parts, signed log). They do not change when the field is shifted
  or turned by quarter turns, so they describe the dynamics rather than where the initial condition
  put its features: with few training trajectories, the raw modes let the GRU fit the training
  windows' parameters by where features sit, which does not carry over to unseen trajectories.
  Use ``modes`` where the environment sets a pattern in space (e.g. a forcing's phase), which
  shells average away.
  For ODE states the GRU reads each state with its change to the next frame (zero for the last):
  the sampled vector field, from which the equation's coefficients can be read (a Fourier spectrum
  of a few scalars would say nothing).
  Changes between frames are small next to the state's spread, so they are divided by their
  standard deviation in the training trajectories (``fit_scale``); unscaled, the states drown them,
  and a network reading both regresses the equation's coefficients far worse.

Both are concatenated and mixed into the condition vector. An auxiliary linear head regresses the
normalized environment parameters from it (``aux_loss``). Any L >= 1 works; training draws L at random.
``stats`` is the same prompter without the implicit branch (the ablation of the GRU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from weightspace.components import Context, Prompter
from weightspace.config import require_positive
from weightspace.nn.prompter import PrompterConfig
from weightspace.system import frame_statistics


@dataclass(frozen=True)
class DynamicsPrompterConfig(PrompterConfig):
    modes: int = 6
    """Lowest Fourier modes kept per axis for the implicit branch (fields only)."""
    spectrum: Literal["modes", "shells"] = "modes"
    """What the implicit branch reads of each field frame: its low ``modes``, or shell-averaged spectra."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "modes")
        if self.spectrum not in ("modes", "shells"):
            raise ValueError(f"spectrum must be 'modes' or 'shells', got {self.spectrum!r}")


def shell_spectra(frames: torch.Tensor, shells: int) -> torch.Tensor:
    """Per frame of ``[B, L, C, H, W]``, the zero-lag and lag-one cross-spectra of every channel pair
    averaged over the square wavenumber shells ``max(|kx|, |ky|) = 0 .. shells - 1``: ``[B, L, F]``
    (real and imaginary parts, signed log). The last frame's lag-one spectrum pairs it with itself."""
    spec = torch.fft.fft2(frames, norm="ortho")
    h, w = frames.shape[-2:]
    ky, kx = (torch.fft.fftfreq(n, 1 / n, device=frames.device).abs() for n in (h, w))
    shell = torch.maximum(ky[:, None], kx[None, :]).long()
    keep = shell < shells
    average = nn.functional.one_hot(shell[keep], shells).float()
    average = (average / average.sum(dim=0).clamp_min(1)).to(spec.dtype)
    low = spec[..., keep]  # [B, L, C, K]
    following = torch.cat([low[:, 1:], low[:, -1:]], dim=1)
    pairs = [torch.einsum("blak,blck->black", low, other.conj()) for other in (low, following)]
    return signed_log(torch.view_as_real(torch.stack(pairs, dim=2) @ average).flatten(2))


def signed_log(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


class DynamicsPrompter(Prompter):
    name = "dynamics"
    Config = DynamicsPrompterConfig
    implicit_branch: ClassVar[bool] = True
    """Whether the GRU branch is used (``stats`` is the ablation without it)."""

    def __init__(self, config: PrompterConfig, context: Context) -> None:
        super().__init__(config, context)
        self.ode = len(context.state_shape) == 1
        if self.ode:
            self.register_buffer("change_std", torch.ones(context.state_shape[0]))
        probe = torch.zeros(1, 1, *context.state_shape)
        n_stats = frame_statistics(probe, ode=self.ode).shape[-1]
        h = config.hidden
        self.explicit = nn.Sequential(nn.Linear(2 * n_stats, h), nn.GELU(), nn.Linear(h, h))
        if self.implicit_branch:
            self.implicit = nn.GRU(self._sequence(probe).shape[-1], h, batch_first=True)
        branches = 2 if self.implicit_branch else 1
        self.mix = nn.Sequential(nn.Linear(branches * h, h), nn.GELU(), nn.Linear(h, config.dim))

    @property
    def dim(self) -> int:
        return self.config.dim

    def fit_scale(self, trajectories: torch.Tensor) -> None:
        if self.ode:
            change = torch.diff(trajectories, dim=2).flatten(0, 2)
            self.change_std.copy_(change.std(dim=0).clamp_min(1e-6))

    def _sequence(self, frames: torch.Tensor) -> torch.Tensor:
        """The implicit branch's input per frame ``[B, L, features]``."""
        if self.ode:
            change = torch.diff(frames, dim=1, append=frames[:, -1:]) / self.change_std
            return torch.cat([frames, change], dim=-1)
        m = self.config.modes
        if self.config.spectrum == "shells":
            return shell_spectra(frames, m)
        spec = torch.fft.rfft2(frames, norm="ortho")
        low = torch.cat([spec[..., :m, :m], spec[..., -m:, :m]], dim=-2)
        return torch.view_as_real(low).flatten(2)

    def forward(self, frames: torch.Tensor, env_params: torch.Tensor) -> torch.Tensor:
        stats = frame_statistics(frames, ode=self.ode)  # [B, L, S]
        n = frames.shape[1]
        trend = (stats[:, -1] - stats[:, 0]) / max(n - 1, 1)
        parts = [self.explicit(signed_log(torch.cat([stats.mean(dim=1), trend], dim=-1)))]
        if self.implicit_branch:
            parts.append(self.implicit(self._sequence(frames))[1][-1])
        return self.mix(torch.cat(parts, dim=-1))


class StatsPrompter(DynamicsPrompter):
    """The explicit physical branch alone: the ablation of the implicit (GRU) branch."""

    name = "stats"
    Config = PrompterConfig
    implicit_branch = False


@dataclass(frozen=True)
class OraclePrompterConfig(PrompterConfig):
    pass


class OraclePrompter(Prompter):
    """The true (normalized) environment parameters through an MLP: the ablation's upper bound."""

    name = "oracle"
    Config = OraclePrompterConfig

    def __init__(self, config: OraclePrompterConfig, context: Context) -> None:
        super().__init__(config, context)
        self.net = nn.Sequential(
            nn.Linear(context.n_env_params, config.hidden), nn.GELU(), nn.Linear(config.hidden, config.dim)
        )

    @property
    def dim(self) -> int:
        return self.config.dim

    def forward(self, frames: torch.Tensor, env_params: torch.Tensor) -> torch.Tensor:
        return self.net(env_params)
