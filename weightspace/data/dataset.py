"""Trajectory datasets on disk: one HDF5 file per system and profile (see docs/data-format.md).

Layout: groups ``train``, ``test_in`` (seen environments, new initial conditions), ``val_out``
(unseen validation environments) and ``test_out`` (unseen test environments), each with
``trajectories`` ``[n, T, *state]``, ``env_params`` ``[n, P]`` and ``env_index`` ``[n]``; file
attributes name the system, profile, parameters, channels, the time between frames, the seed, the
environment split, the settings and solver, and the weightspace version. Files are written
atomically; reading checks the layout and names what is wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from weightspace.errors import StorageError
from weightspace.storage import atomic_path

SPLITS = ("train", "test_in", "val_out", "test_out")
OPTIONAL_SPLITS = ("oracle", "observed")
"""``oracle``: training-period data of unseen environments, where a dataset has them (imported
data cannot simulate them), for the One-per-Env reference. ``observed``: one window per
environment, apart in time from every scored test window, whose first frames adaptation methods
observe (imported data cannot simulate a fresh trajectory either)."""
REQUIRED_ATTRS = ("system", "profile", "param_names", "channel_names", "dt", "seed", "settings", "solver", "version")


@dataclass(frozen=True)
class Split:
    trajectories: torch.Tensor  # [n, T, *state]
    env_params: torch.Tensor  # [n, P]
    env_index: torch.Tensor  # [n], index into the system's environment grid

    def __post_init__(self) -> None:
        n = self.trajectories.shape[0]
        if self.env_params.shape[0] != n or self.env_index.shape != (n,):
            raise StorageError(
                f"split sizes disagree: trajectories {tuple(self.trajectories.shape)}, "
                f"env_params {tuple(self.env_params.shape)}, env_index {tuple(self.env_index.shape)}"
            )


@dataclass(frozen=True)
class Dataset:
    splits: dict[str, Split]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]

    @property
    def dt(self) -> float:
        return float(self.attrs["dt"])


def write_dataset(path: str | os.PathLike, dataset: Dataset) -> None:
    """Write ``dataset`` to ``path`` atomically (a temporary file renamed into place), after
    :func:`check_layout`."""
    missing = [a for a in REQUIRED_ATTRS if a not in dataset.attrs]
    if missing or not set(SPLITS) <= set(dataset.splits) <= {*SPLITS, *OPTIONAL_SPLITS}:
        raise StorageError(f"incomplete dataset: missing attributes {missing}, splits {sorted(dataset.splits)}")
    check_layout(dataset, str(path))  # a file that loading would reject is never written
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in dataset.attrs.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, dict) else value
        for name, split in dataset.splits.items():
            group = f.create_group(name)
            group.create_dataset(
                "trajectories", data=split.trajectories.numpy(), compression="gzip", compression_opts=1
            )
            group.create_dataset("env_params", data=split.env_params.numpy())
            group.create_dataset("env_index", data=split.env_index.numpy())


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read a dataset written by :func:`write_dataset`, as torch tensors plus attributes."""
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"no such file: {path}")
    try:
        with h5py.File(path, "r") as f:
            missing = [a for a in REQUIRED_ATTRS if a not in f.attrs]
            if missing:
                raise StorageError(f"{path} is not a weightspace dataset: missing attributes {', '.join(missing)}")
            attrs = {k: _attr(v) for k, v in f.attrs.items()}
            for key in ("settings", "solver", "environment_split"):
                if key in attrs:
                    attrs[key] = json.loads(attrs[key])
            if "val_out" not in f and "test_out" in f:
                raise StorageError(
                    f"{path} was written by an older weightspace, before unseen environments were split into "
                    "validation and test ones: simulate (or import) it again"
                )
            splits = {}
            for name in (*SPLITS, *(s for s in OPTIONAL_SPLITS if s in f)):
                if name not in f or any(k not in f[name] for k in ("trajectories", "env_params", "env_index")):
                    raise StorageError(f"{path} lacks split {name!r} or one of its datasets")
                g = f[name]
                splits[name] = Split(
                    torch.from_numpy(g["trajectories"][()]),
                    torch.from_numpy(g["env_params"][()]),
                    torch.from_numpy(g["env_index"][()]),
                )
    except OSError as exc:
        raise StorageError(f"{path} is not a readable HDF5 file: {exc}") from None
    dataset = Dataset(splits, attrs)
    state_shapes = {tuple(s.trajectories.shape[2:]) for s in splits.values()}
    if len(state_shapes) != 1:
        raise StorageError(f"{path}: splits disagree on the state shape: {sorted(state_shapes)}")
    check_layout(dataset, str(path))
    return dataset


def read_env_index(path: str | os.PathLike, split: str) -> torch.Tensor:
    """The ``env_index`` of one split, read without the trajectories: what a zoo's manifest is
    checked against on every load, where reading a paper-sized file whole would dominate."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            found = split in f and "env_index" in f[split]
            env_index = f[split]["env_index"][()] if found else None
    except OSError as exc:
        raise StorageError(f"{path} is not a readable HDF5 file: {exc}") from None
    if env_index is None:
        raise StorageError(f"{path} lacks split {split!r} or its env_index")
    return torch.from_numpy(env_index)


def check_layout(dataset: Dataset, where: str) -> None:
    """Raise a :class:`StorageError` unless every split matches the file's own attributes:
    trajectories float32 ``[n, T, D]`` or ``[n, T, C, H, W]`` with one ``D`` or ``C`` per channel name,
    ``env_params`` ``[n, P]`` with one column per parameter name, ``env_index`` integers; and no
    environment in two of ``train``, ``val_out`` and ``test_out`` (a choice made on a validation
    environment that is also scored would leak into the test figures). A file whose arrays
    contradict its names would otherwise fail far from the file, inside a model."""
    system = dataset.attrs.get("system")
    channels, params = list(dataset.attrs["channel_names"]), list(dataset.attrs["param_names"])
    for name, split in dataset.splits.items():
        what = f"{where}: split {name!r} of system {system!r}"
        traj = split.trajectories
        state = list(traj.shape[2:])
        if traj.dim() not in (3, 5) or state[0] != len(channels):
            raise StorageError(
                f"{what} holds trajectories {list(traj.shape)}; expected [n, T, {len(channels)}] or "
                f"[n, T, {len(channels)}, H, W] for its channels {', '.join(channels)}"
            )
        if traj.dtype != torch.float32:
            raise StorageError(f"{what} holds {traj.dtype} trajectories; the format stores float32")
        if split.env_params.dim() != 2 or split.env_params.shape[1] != len(params):
            raise StorageError(
                f"{what} holds env_params {list(split.env_params.shape)}; expected [n, {len(params)}] "
                f"for its parameters {', '.join(params)}"
            )
        if split.env_index.dtype.is_floating_point or split.env_index.dtype.is_complex:
            raise StorageError(f"{what} holds {split.env_index.dtype} env_index; expected integers")
    parts = {name: set(dataset.splits[name].env_index.tolist()) for name in ("train", "val_out", "test_out")}
    for a, b in (("train", "val_out"), ("train", "test_out"), ("val_out", "test_out")):
        shared = sorted(parts[a] & parts[b])
        if shared:
            raise StorageError(
                f"{where}: environment(s) {shared[:5]} are in both {a!r} and {b!r}; the splits must be disjoint"
            )


def _attr(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_attr(v) for v in value.tolist()]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
