"""A trained run whose flow generator is tuned toward one environment's observed frames by adjoint
matching (:mod:`weightspace.nn.adjoint_matching`), for ``generate --tune-steps`` and the
``adjoint-matching`` method.

Rules:

- The reward of a latent is ``-log residual`` of its decoded expert on the observed frames (the
  normalized MSE :func:`weightspace.metrics.observation_residual` scores candidates by): with the
  log, the tilt ``p(latent | prompt) * residual^(-reward_scale)`` does not depend on the residual's
  units, so one ``reward_scale`` means the same on every system. A latent whose expert blows up on
  the frames gives no direction (its reward gradient is taken as 0).
- The prompt is the one generation uses for these frames, and the tuned generator is a copy: the
  run itself is left as it was.
- Only flows (:class:`weightspace.nn.latent_flow.LatentFlow`, e.g. ``flow-matching``) are tuned:
  the memoryless noise schedule is derived for their straight paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from weightspace.errors import ConfigError
from weightspace.metrics import observation_residual
from weightspace.nn.adjoint_matching import AdjointMatchingConfig, Velocity, adjoint_matching
from weightspace.nn.latent_flow import LatentFlow
from weightspace.pipeline.run import Run

Reward = Callable[[torch.Tensor], torch.Tensor]


def frame_reward(run: Run, observed: torch.Tensor) -> tuple[Reward, torch.Tensor]:
    """The reward of latents in the flow's sampling space ``[B, N, z]`` for one environment's
    observed frames ``[1, L >= 2, *state]`` (raw), and the prompt ``[1, c]`` they are generated from."""
    zoo, generator = run.zoo, run.generator
    state = run.state_shape
    if (
        observed.dim() != 2 + len(state)
        or observed.shape[0] != 1
        or observed.shape[1] < 2
        or observed.shape[2:] != state
    ):
        raise ConfigError(
            f"the reward needs one environment's frames [1, L >= 2, {', '.join(map(str, state))}], "
            f"got {list(observed.shape)}"
        )
    if not torch.isfinite(observed).all():
        raise ConfigError("the observed frames hold non-finite values (nan or inf)")
    env_params = run.env_scale.normalize(torch.zeros(1, len(zoo.manifest["param_names"])))
    with torch.no_grad():
        condition = run.prompter(zoo.scale.normalize(observed.float()), env_params)
    target = observed.float()

    def reward(x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            x.register_hook(lambda g: torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0))
        params = run.codec.decode(generator.sampled_latents(x, condition.expand(len(x), -1)))
        residual = observation_residual(
            zoo.adapter, params, target.expand(len(x), *target.shape[1:]), zoo.scale, zoo.dt
        )
        value = -torch.log(residual.clamp_min(1e-12))
        return torch.where(torch.isfinite(value), value, torch.zeros_like(value))

    return reward, condition


def tune_toward_frames(
    run: Run, observed: torch.Tensor, config: AdjointMatchingConfig, seed: int
) -> tuple[Run, list[float]]:
    """The run with its flow generator tuned toward the frames ``[1, L, *state]``, and the step losses."""
    generator = run.generator
    if not isinstance(generator, LatentFlow):
        raise ConfigError(
            f"adjoint matching tunes a flow generator (e.g. flow-matching); run {run.path} has {generator.name!r}"
        )
    reward, condition = frame_reward(run, observed)

    def velocity(model: LatentFlow) -> Velocity:
        return lambda x, t: model.velocity(condition.expand(len(x), -1))(x, t)

    tuned, losses = adjoint_matching(
        generator, velocity, generator.source, reward, config, torch.Generator().manual_seed(seed)
    )
    return replace(run, generator=tuned), losses
