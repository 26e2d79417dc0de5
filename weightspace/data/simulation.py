"""Build a system's dataset: split environments, simulate every split, record how it was made.

Seen environments get ``n_train + n_test`` trajectories each (the first ``n_train`` are ``train``,
the rest ``test_in``); unseen environments get ``n_test``: the validation ones are ``val_out``, the
test ones ``test_out``. Unseen environments of both kinds draw from one seed stream, so an
environment's trajectories do not depend on which part it fell in. Environments are simulated
in chunks of about ``CHUNK_TRAJECTORIES`` trajectories (larger batches cost more per trajectory on a
CPU), and every environment's initial conditions come from its own seeded generator, so the data do
not depend on the chunking.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from weightspace import __version__
from weightspace.config import config_to_dict
from weightspace.data.dataset import Dataset, Split
from weightspace.errors import ConfigError, PluginError, SimulationError
from weightspace.system import System

CHUNK_TRAJECTORIES = 32


def simulate_split(
    system: System,
    env_index: torch.Tensor,
    n_traj: int,
    seed: int,
    stream: str,
    advance: Callable[[int], None] | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Trajectories ``[E, n_traj, T, *state]`` of ``env_index``, chunked, each chunk checked by
    :func:`check_trajectories`."""
    per_chunk = max(1, CHUNK_TRAJECTORIES // n_traj)
    parts = []
    for chunk in env_index.split(per_chunk):
        traj = system.simulate(chunk, n_traj, seed, stream, device)
        check_trajectories(system, chunk, n_traj, traj)
        parts.append(traj.cpu())
        if advance is not None:
            advance(len(chunk))
    return torch.cat(parts)


def check_trajectories(system: System, env_index: torch.Tensor, n_traj: int, traj: torch.Tensor) -> None:
    """Raise unless ``traj`` is what ``system`` promises for the environments ``env_index``: float32
    ``[E, n_traj, n_frames, *state_shape()]`` (a :class:`PluginError` naming the system, the shape
    found and the shape expected), finite (a :class:`SimulationError` naming the first environment
    that blew up, checked as soon as there is one trajectory per environment to look at). A system
    that breaks its own declaration would otherwise fail later, deep inside training, far from the
    plugin at fault."""
    expected = (len(env_index), n_traj, system.settings.n_frames, *system.state_shape())

    def wrong_shape() -> PluginError:
        found = list(traj.shape) if isinstance(traj, torch.Tensor) else type(traj).__name__
        return PluginError(
            f"system {system.name!r} returned trajectories of shape {found}; expected [E, N, T, *state_shape()] = "
            f"{list(expected)} (channels: {', '.join(system.channel_names)})"
        )

    if not isinstance(traj, torch.Tensor) or tuple(traj.shape[:2]) != expected[:2]:
        raise wrong_shape()
    bad = ~torch.isfinite(traj.flatten(1)).all(dim=1).cpu()
    if bad.any():
        env = system.environments()[env_index[bad.nonzero()[0, 0]]]
        values = ", ".join(f"{n}={v:.4g}" for n, v in zip(system.param_names, env.tolist()))
        raise SimulationError(f"{system.name} produced NaN or inf in environment {values}")
    if tuple(traj.shape) != expected:
        raise wrong_shape()
    if traj.dtype != torch.float32:
        raise PluginError(f"system {system.name!r} returned {traj.dtype} trajectories; the data format stores float32")


def build_dataset(
    system: System, seed: int, advance: Callable[[int], None] | None = None, device: str | torch.device = "cpu"
) -> Dataset:
    """The splits of ``system`` at its profile, solved on ``device``: environments split by the
    system's ``split_seed``, trajectories drawn from ``seed``; ``advance(n)`` reports n environments
    done."""
    s = system.settings
    seen, val, test = system.split(s.split_seed)
    envs = system.environments()
    seen_traj = simulate_split(system, seen, s.n_train + s.n_test, seed, "seen", advance, device)
    val_traj = simulate_split(system, val, s.n_test, seed, "unseen", advance, device)
    test_traj = simulate_split(system, test, s.n_test, seed, "unseen", advance, device)

    def flat(traj: torch.Tensor, index: torch.Tensor) -> Split:
        n = traj.shape[1]
        rows = index.repeat_interleave(n)
        return Split(traj.flatten(0, 1).contiguous(), envs[rows].float(), rows)

    splits = {
        "train": flat(seen_traj[:, : s.n_train], seen),
        "test_in": flat(seen_traj[:, s.n_train :], seen),
        "val_out": flat(val_traj, val),
        "test_out": flat(test_traj, test),
    }
    attrs = {
        "system": system.name,
        "profile": system.profile,
        "param_names": list(system.param_names),
        "channel_names": list(system.channel_names),
        "dt": float(s.dt),
        "seed": int(seed),
        "environment_split": {name: part.tolist() for name, part in zip(("seen", "val", "test"), (seen, val, test))},
        "settings": config_to_dict(s),
        "solver": system.solver_attributes(),
        "version": f"weightspace {__version__}, torch {torch.__version__}",
    }
    return Dataset(splits, attrs)


def observed_frames(system: System, env_index: torch.Tensor, length: int, seed: int) -> torch.Tensor:
    """The first ``length`` frames ``[E, L, *state]`` of one trajectory per environment, from the seed
    stream ``observed``: what every adaptation method (fine-tuning, generation) gets to see."""
    if not 0 < length <= system.settings.n_frames:
        raise ConfigError(
            f"{length} observed frames requested; a {system.name} trajectory has {system.settings.n_frames}"
        )
    return simulate_split(system, env_index, 1, seed, "observed")[:, 0, :length].float()
