"""``gridded``: a system served from a dataset imported with ``weightspace import gridded``.

Real data cannot be simulated, so where a simulator solves new trajectories this system hands out
the imported ones by the stream that asks (see ``weightspace.system.System.simulate``):

- ``seen`` (training and in-domain test trajectories of seen environments): the training-period
  windows, then the test-period windows;
- ``unseen`` (test trajectories of unseen environments): the test-period windows;
- ``observed`` (one trajectory whose first frames are observed): the file's ``observed`` window,
  which the import sets aside at the start of the test period, before and apart from every scored
  test window (``weightspace.data.gridded`` says why there); a file without one serves no observed
  frames and says so, and a file imported before this window existed (its observed frames were the
  first scored test window) is refused with a request to import it again;
- ``oracle`` (training trajectories of any environment, for One-per-Env): the training-period
  windows (the file's ``oracle`` split for unseen environments).

The seen/unseen split is the file's (drawn by the import's seed), whatever seed a zoo uses.
Settings: ``path`` (required), and optionally fewer ``n_train`` / ``n_test`` windows per
environment than the file holds; the rest (frames, dt, environments) come from the file. Any file
in the dataset format works (``docs/data-format.md``, e.g. written by your own code); without an
``oracle`` split One-per-Env cannot be trained on unseen environments, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from weightspace.data.dataset import load_dataset
from weightspace.errors import ConfigError
from weightspace.system import EnvironmentSplit, System, SystemSettings

FROM_FILE = ("n_frames", "dt", "n_seen", "n_train", "n_test")


@dataclass(frozen=True)
class GriddedSettings(SystemSettings):
    path: str = ""
    """The dataset written by ``weightspace import gridded``."""


class Gridded(System):
    name = "gridded"
    param_names = ("env",)
    channel_names = ("field",)
    Settings = GriddedSettings
    profiles = {"quick": {}, "paper": {}}

    def __init__(self, profile: str = "quick", overrides: Mapping[str, Any] | None = None) -> None:
        overrides = dict(overrides or {})
        path = overrides.get("path")
        if not path:
            raise ConfigError(
                "system 'gridded' needs system_settings path = <file written by `weightspace import gridded`>"
            )
        if not Path(path).is_file():
            raise ConfigError(f"system 'gridded': no such file {path} (write it with `weightspace import gridded`)")
        self.dataset = load_dataset(path)
        recorded = _recorded_settings(self.dataset, path)
        for key in ("n_train", "n_test"):
            if overrides.get(key, 0) > recorded[key]:
                raise ConfigError(f"{path} holds {recorded[key]} {key} windows per environment; {key} cannot exceed it")
        # the file's split stands; a zoo passes every setting back, val_fraction at its (unused) default
        moved = overrides.get("val_fraction", GriddedSettings.val_fraction) != GriddedSettings.val_fraction
        if overrides.get("n_seen", recorded["n_seen"]) != recorded["n_seen"] or moved:
            raise ConfigError(f"{path} fixes the split ({recorded['n_seen']} seen environments); set it on import")
        self.param_names = tuple(self.dataset.attrs["param_names"])
        self.channel_names = tuple(self.dataset.attrs["channel_names"])
        self._environments = torch.tensor(recorded["environments"], dtype=torch.float64)
        self._by_split = {name: _by_environment(split) for name, split in self.dataset.splits.items()}
        self._by_split.setdefault("oracle", {})
        if "environments" in self.dataset.attrs["settings"] and "observed" not in self._by_split:
            raise ConfigError(
                f"{path} was imported by an older weightspace whose observed frames were the first scored test "
                "window; import it again with `weightspace import gridded` (it sets an observed window aside)"
            )
        super().__init__(profile, {**{k: recorded[k] for k in FROM_FILE}, **overrides})

    def environments(self) -> torch.Tensor:
        return self._environments

    def state_shape(self) -> tuple[int, ...]:
        return tuple(self.dataset["train"].trajectories.shape[2:])

    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        raise ConfigError("gridded data have no initial-condition sampler: they are served from the imported file")

    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        raise ConfigError("gridded data cannot be solved from new initial conditions: they come from the imported file")

    @property
    def n_val_envs(self) -> int:
        return len(self.dataset["val_out"].env_index.unique())

    def split(self, seed: int) -> EnvironmentSplit:
        parts = (self.dataset[name].env_index.unique().sort().values for name in ("train", "val_out", "test_out"))
        return EnvironmentSplit(*parts)

    def simulate(
        self, env_index: torch.Tensor, n_traj: int, seed: int, stream: str = "", device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        s = self.settings
        parts = []
        for env in env_index.tolist():
            train = self._by_split["train"].get(env, self._by_split["oracle"].get(env))
            test = next(
                (self._by_split[k][env] for k in ("test_in", "val_out", "test_out") if env in self._by_split[k]), None
            )
            if stream == "seen":
                if env not in self._by_split["train"]:
                    raise ConfigError(f"environment {env} is not a seen environment of {s.path}")
                data = torch.cat([train[: s.n_train], test[: s.n_test]])[:n_traj]
            elif stream == "unseen":
                data = test[:n_traj]
            elif stream == "observed":
                if env not in self._by_split.get("observed", {}):
                    raise ConfigError(
                        f"{s.path} has no observed window of environment {env} (no 'observed' split): observed frames "
                        "must come from a window apart from the scored test windows (docs/data-format.md)"
                    )
                data = self._by_split["observed"][env][:n_traj]
            elif stream == "oracle":
                if train is None:
                    raise ConfigError(
                        f"{s.path} has no training data of unseen environment {env} (no 'oracle' split): "
                        "One-per-Env cannot be trained there"
                    )
                data = train[:n_traj]
            else:
                raise ConfigError(f"gridded data serve the streams seen, unseen, observed and oracle, not {stream!r}")
            if len(data) < n_traj:
                raise ConfigError(
                    f"{s.path} has {len(data)} {stream} trajectories of environment {env}; {n_traj} asked"
                )
            parts.append(data)
        return torch.stack(parts).to(device)


def _by_environment(split: Any) -> dict[int, torch.Tensor]:
    return {int(e): split.trajectories[split.env_index == e] for e in split.env_index.unique()}


def _recorded_settings(dataset: Any, path: str) -> dict[str, Any]:
    """The import's record, or, for a file written in the format by other means (a simulator, your
    own code), the same facts read off its splits: every environment must appear in one."""
    recorded = dataset.attrs["settings"]
    if "environments" in recorded:
        return recorded
    params: dict[int, list[float]] = {}
    for split in dataset.splits.values():
        for e, p in zip(split.env_index.tolist(), split.env_params.tolist()):
            params.setdefault(e, p)
    if sorted(params) != list(range(len(params))):
        raise ConfigError(f"{path}: environment indices must run from 0 without gaps, got {sorted(params)[:10]}...")

    def windows(name: str) -> int:
        return min(len(v) for v in _by_environment(dataset[name]).values())

    return {
        "environments": [params[e] for e in range(len(params))],
        "n_frames": int(dataset["train"].trajectories.shape[1]),
        "dt": dataset.dt,
        "n_seen": len(dataset["train"].env_index.unique()),
        "n_train": windows("train"),
        "n_test": min(windows(name) for name in ("test_in", "val_out", "test_out")),
    }
