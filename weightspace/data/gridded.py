"""Import gridded fields from local files (ERA5-style reanalysis, simulation output) as a dataset.

``import_gridded`` reads NetCDF (or any HDF5 xarray opens) or zarr through xarray, cuts
environments (regular lat/lon tiles, or the values of a dimension such as an ensemble member),
resamples each to a fixed tile grid, splits environments into seen, validation and test ones (seeded) and
time into a training and a test period, cuts each period into windows of ``n_frames`` (the
trajectories), normalizes each channel with the statistics of the seen environments' training
period only (a plain mean and standard deviation over the resampled tiles' points), and writes
the simulators' HDF5 layout (``docs/data-format.md``) plus two splits: ``oracle``, the unseen
(validation and test) environments' training period, which One-per-Env trains on since imported data cannot be
simulated; and ``observed``, one window per environment (seen and unseen) whose first frames
adaptation methods observe.

The ``observed`` window is the first ``n_frames`` steps of the test period, and the scored test
windows (``test_in``, ``val_out``, ``test_out``) are cut from the steps after it, so observed frames never
overlap a scored window in time (a simulator's ``observed`` stream is likewise a fresh trajectory,
independent of the scored ones). It is taken from the test period rather than from the last
pre-test frames because those are training data (the seen environments' ``train``, the unseen
ones' ``oracle``) and, when the periods lie apart (January 2018 / January 2019), from another
regime than the scored windows; the window at the test period's start is fresh data of the
scored regime that precedes every scored window, so no method observes the future it is scored
on. It costs ``n_frames`` steps of the test period, which must hold at least ``2 * n_frames``.

Shrinking a region of a latitude/longitude grid to its tile averages the source cells weighted
by cos(latitude), each cell's area on a regular grid, as conservative regridding does; missing
values are left out of numerator and denominator. Environments from a dimension (``dim:NAME``)
and grids whose rows are a ``y`` axis, which need not be latitude, keep plain averages, as does
the bilinear interpolation when a tile is larger than its region.

The ``gridded`` system (``weightspace_systems.gridded``) serves the file
to the rest of the pipeline. Real-data problems (missing values, 0..360 longitudes, uneven time
steps, missing variables, a grid too small for its tiles) get messages that name them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from weightspace import __version__
from weightspace.data.dataset import Dataset, Split, write_dataset
from weightspace.errors import ConfigError, StorageError
from weightspace.system import check_split, random_split

TIME_NAMES = ("time", "valid_time", "t")
LAT_NAMES = ("latitude", "lat", "y")
GEOGRAPHIC_LAT = ("latitude", "lat")
"""Latitude names taken as degrees of latitude (area-weighted averages); ``y`` may be any axis."""
LON_NAMES = ("longitude", "lon", "x")


@dataclass(frozen=True)
class GriddedImport:
    """How to turn a gridded file into environments and trajectories."""

    variables: tuple[str, ...]
    """Data variables, in channel order (e.g. ``("u100", "v100")``)."""
    env_by: str = "regions:2x2"
    """``regions:RxC`` (R latitude bands x C longitude bands of the grid) or ``dim:NAME`` (one
    environment per value of dimension NAME, e.g. an ensemble member or a forcing)."""
    time_split: str = "0.5"
    """Start of the test period: an ISO date (``2019-01-01``) or a fraction of the time axis."""
    tile: tuple[int, int] = (32, 32)
    """Grid every environment is resampled to (H, W)."""
    n_frames: int = 24
    """Frames per trajectory (windows of the time series)."""
    stride: int | None = None
    """Frames between window starts (default: ``n_frames``, non-overlapping)."""
    n_seen: int | None = None
    """Seen environments (default: a third, at least one)."""
    n_val: int | None = None
    """Unseen environments set aside for validation (default: half the unseen ones, at least one)."""
    seed: int = 0
    max_missing: float = 0.2
    """Environments with a larger fraction of missing values (NaN, e.g. land) are dropped."""

    def __post_init__(self) -> None:
        if not self.variables:
            raise ConfigError("name at least one variable (--vars u100,v100)")
        if self.n_frames < 2:
            raise ConfigError(f"n_frames must be at least 2, got {self.n_frames}")
        if min(self.tile) < 4:
            raise ConfigError(f"the tile grid must be at least 4x4, got {self.tile}")
        if not 0 <= self.max_missing < 1:
            raise ConfigError(f"max_missing must be in [0, 1), got {self.max_missing}")


@dataclass(frozen=True)
class ImportSummary:
    path: Path
    n_envs: int
    n_seen: int
    n_val: int
    n_train: int
    n_test: int
    dropped: list[dict[str, Any]]
    """Environments dropped for missing values: their parameters and missing fraction."""
    missing_filled: float
    """Fraction of the kept values that were missing and filled with the channel mean."""


def _open(path: Path) -> Any:
    import xarray as xr

    if not path.exists():
        raise StorageError(f"no such file or folder: {path}")
    try:
        if path.is_dir() or path.suffix == ".zarr":
            return xr.open_zarr(path)
        return xr.open_dataset(path)
    except ImportError as exc:
        raise ConfigError(f"reading {path} needs a package xarray did not find: {exc}") from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"{path} is not a NetCDF, HDF5 or zarr dataset xarray can read: {exc}") from None


def _find(ds: Any, names: tuple[str, ...], what: str) -> str:
    for name in names:
        if name in ds.dims or name in ds.coords:
            return name
    raise ConfigError(
        f"no {what} coordinate (looked for {', '.join(names)}); the file has {', '.join(map(str, ds.dims))}"
    )


def _time_step(times: np.ndarray, period: str) -> tuple[float, str]:
    """The uniform step of ``times`` (hours for datetimes), or a message naming the first uneven gap."""
    if len(times) < 2:
        raise ConfigError(f"the {period} period has fewer than 2 time steps")
    steps = np.diff(times)
    if (steps <= steps[:1] * 0).any():
        raise ConfigError("the time axis is not increasing")
    uneven = np.nonzero(steps != steps[0])[0]
    if len(uneven):
        i = int(uneven[0])
        raise ConfigError(
            f"uneven time steps in the {period} period: {steps[0]} until {times[i]}, then {steps[i]} to "
            f"{times[i + 1]}; resample the data to a uniform step first (e.g. xarray's resample)"
        )
    if np.issubdtype(times.dtype, np.datetime64):
        return float(steps[0] / np.timedelta64(1, "h")), "hours"
    return float(steps[0]), "time units of the file"


def _tiles(
    values: np.ndarray, lat: np.ndarray, lon: np.ndarray, spec: str
) -> tuple[list[np.ndarray], np.ndarray, list[str], list[np.ndarray]]:
    """Cut ``values`` ``[T, C, Y, X]`` into regions: their data, parameters ``[E, 2]`` (centre
    latitude and longitude), parameter names and each region's row latitudes."""
    try:
        rows, cols = (int(n) for n in spec.split("x"))
    except ValueError:
        raise ConfigError(f"regions must be given as RxC, e.g. regions:6x12, got {spec!r}") from None
    ny, nx = values.shape[-2:]
    if rows < 1 or cols < 1 or ny < 2 * rows or nx < 2 * cols:
        raise ConfigError(
            f"a grid of {ny} x {nx} (lat x lon) points is too small for {rows} x {cols} regions "
            "(each needs at least 2 x 2 points)"
        )
    data, params, lats = [], [], []
    for ys in np.array_split(np.arange(ny), rows):
        for xs in np.array_split(np.arange(nx), cols):
            data.append(values[..., ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1])
            params.append((float(lat[ys].mean()), float(lon[xs].mean())))
            lats.append(lat[ys])
    return data, np.array(params), ["lat", "lon"], lats


def _resample(
    field: np.ndarray, size: tuple[int, int], lat: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``field`` ``[T, C, y, x]`` on a ``size`` grid, missing values left out of the averages; and
    the fraction of valid values behind each resampled point (0: nothing valid there).

    With ``lat`` (the ``y`` source cells' latitudes, in degrees) the area averages (shrinking)
    weight each source cell by cos(latitude), its area on a regular lat-lon grid, as conservative
    regridding does: sum(w * v) / sum(w) over the valid cells. Without it, and for the bilinear
    interpolation when growing, every cell counts the same. The valid fraction is always a plain
    count of cells."""
    x = torch.from_numpy(np.ascontiguousarray(field, dtype=np.float32))
    valid = torch.isfinite(x).float()
    shrink = x.shape[-2] >= size[0] and x.shape[-1] >= size[1]
    mode = {"mode": "area"} if shrink else {"mode": "bilinear"}
    weight = F.interpolate(valid, size=size, **mode)
    values = torch.nan_to_num(x) * valid
    if lat is not None and shrink:
        area = torch.from_numpy(np.clip(np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64))), 0, None))
        area = area.float().view(-1, 1)  # [y, 1]: one weight per source row
        denominator = F.interpolate(valid * area, size=size, **mode)
        total = F.interpolate(values * area, size=size, **mode)
        plain = F.interpolate(values, size=size, **mode) / weight.clamp_min(1e-12)
        return torch.where(denominator > 0, total / denominator.clamp_min(1e-30), plain), weight
    total = F.interpolate(values, size=size, **mode)
    return total / weight.clamp_min(1e-12), weight


def _windows(series: torch.Tensor, n_frames: int, stride: int) -> torch.Tensor:
    """Windows ``[n, n_frames, ...]`` of a time series ``[T, ...]``."""
    starts = range(0, series.shape[0] - n_frames + 1, stride)
    return torch.stack([series[s : s + n_frames] for s in starts])


def import_gridded(path: str | Path, settings: GriddedImport, out: str | Path) -> ImportSummary:
    """Read ``path``, cut environments and trajectories as ``settings`` says, and write the dataset
    to ``out`` (an ``.h5`` file). See the module docstring."""
    path, out = Path(path), Path(out)
    ds = _open(path)
    missing = [v for v in settings.variables if v not in ds.data_vars]
    if missing:
        raise ConfigError(
            f"{path} has no variable {', '.join(missing)}; its variables: {', '.join(map(str, ds.data_vars))}"
        )
    time, lat, lon = _find(ds, TIME_NAMES, "time"), _find(ds, LAT_NAMES, "latitude"), _find(ds, LON_NAMES, "longitude")
    ds = ds[list(settings.variables)]
    if float(ds[lon].max()) > 180:  # 0..360 -> -180..180, so regions and parameters read as usual
        ds = ds.assign_coords({lon: ((ds[lon] + 180) % 360) - 180})
    ds = ds.sortby([lat, lon])
    times = ds[time].values
    split_at = _split_index(times, settings.time_split)
    # steps must be uniform within each period; the periods may be apart (January 2018 and 2019)
    (dt, dt_unit), (dt_test, _) = _time_step(times[:split_at], "training"), _time_step(times[split_at:], "test")
    if dt != dt_test:
        raise ConfigError(f"the training period steps by {dt} {dt_unit}, the test period by {dt_test}")
    kind, _, spec = settings.env_by.partition(":")
    order = [d for d in (spec,) if kind == "dim"] + [time, lat, lon]
    if kind == "dim" and spec not in ds.dims:
        raise ConfigError(
            f"no dimension {spec!r} to take environments from; dimensions: {', '.join(map(str, ds.dims))}"
        )
    if kind not in ("regions", "dim"):
        raise ConfigError(f"env_by must be regions:RxC or dim:NAME, got {settings.env_by!r}")
    arrays = [ds[v].transpose(*order).values for v in settings.variables]
    values = np.stack(arrays, axis=-3)  # [(E,) T, C, Y, X]
    lat_values = np.asarray(ds[lat].values)
    geographic = (
        kind == "regions"
        and lat in GEOGRAPHIC_LAT
        and np.issubdtype(lat_values.dtype, np.number)
        and bool(np.all(np.abs(lat_values) <= 90))
    )
    row_lats: list[np.ndarray | None]
    if kind == "regions":
        fields, params, names, lats = _tiles(values, lat_values, ds[lon].values, spec)
        row_lats = [band if geographic else None for band in lats]  # cos(latitude) area weights
    else:
        coordinate = ds[spec].values
        numeric = np.issubdtype(coordinate.dtype, np.number)
        params = (coordinate if numeric else np.arange(len(coordinate))).astype(np.float64)[:, None]
        fields, names = list(values), [spec]
        row_lats = [None] * len(fields)  # environments from a dimension: plain averages

    resampled, kept, dropped, filled = [], [], [], []
    for i, field in enumerate(fields):
        data, weight = _resample(field, settings.tile, row_lats[i])
        missing_fraction = 1 - float(weight.mean())
        if missing_fraction > settings.max_missing:
            dropped.append({"env_params": params[i].tolist(), "missing_fraction": round(missing_fraction, 4)})
            continue
        kept.append(i)
        filled.append(float((weight == 0).float().mean()))
        resampled.append(torch.where(weight > 0, data, torch.nan))
    if len(kept) < 2:
        raise ConfigError(
            f"only {len(kept)} environment(s) have at most {settings.max_missing:.0%} missing values "
            f"({len(dropped)} dropped); raise max_missing or choose other variables or regions"
        )
    params = params[kept]
    series = torch.stack(resampled)  # [E, T, C, H, W]

    n_time = series.shape[1]
    stride = settings.stride or settings.n_frames
    n_frames = settings.n_frames
    if split_at < n_frames:
        raise ConfigError(
            f"the training period has {split_at} time steps, fewer than n_frames = {n_frames}; "
            "move the time split or shorten the windows"
        )
    if n_time - split_at < 2 * n_frames:
        raise ConfigError(
            f"the test period has {n_time - split_at} time steps; it needs at least 2 x n_frames = {2 * n_frames} "
            f"(the first {n_frames} set aside for observed frames, then at least one scored window); "
            "move the time split or shorten the windows"
        )
    scored_from = split_at + n_frames  # the observed window comes first, never overlapping a scored one
    train_period = torch.stack([_windows(s[:split_at], n_frames, stride) for s in series])
    observed = series[:, None, split_at:scored_from]  # [E, 1, n_frames, ...]
    test_period = torch.stack([_windows(s[scored_from:], n_frames, stride) for s in series])

    n_envs = len(kept)
    n_seen = settings.n_seen if settings.n_seen is not None else max(1, round(n_envs / 3))
    n_val = settings.n_val if settings.n_val is not None else max(1, (n_envs - n_seen) // 2)
    check_split(f"the import ({len(kept)} environments kept)", n_envs, n_seen, n_val)
    seen, val, test = random_split(n_envs, n_seen, n_val, settings.seed)
    unseen = torch.cat([val, test]).sort().values

    reference = train_period[seen].transpose(0, 3).flatten(1)  # [C, ...]: the seen training period only
    mean = torch.stack([c[torch.isfinite(c)].mean() for c in reference])
    std = torch.stack([c[torch.isfinite(c)].std() for c in reference]).clamp_min(1e-12)
    shape = (1, 1, 1, -1, 1, 1)

    def normalized(x: torch.Tensor) -> torch.Tensor:
        return torch.nan_to_num((x - mean.view(shape)) / std.view(shape), nan=0.0)  # missing -> channel mean

    train_period, test_period, observed = normalized(train_period), normalized(test_period), normalized(observed)
    env_params = torch.from_numpy(params)

    def split(data: torch.Tensor, index: torch.Tensor) -> Split:
        n = data.shape[1]
        rows = index.repeat_interleave(n)
        return Split(data[index].flatten(0, 1).contiguous(), env_params[rows].float(), rows)

    n_train, n_test = train_period.shape[1], test_period.shape[1]
    settings_record = {
        **asdict(settings),
        "n_frames": settings.n_frames,
        "n_seen": n_seen,
        "n_val_envs": n_val,
        "n_train": n_train,
        "n_test": n_test,
        "dt": dt,
        "environments": params.tolist(),
    }
    variables = {v: {k: str(val) for k, val in ds[v].attrs.items()} for v in settings.variables}
    solver = {
        "source": str(path.resolve()),
        "source_format": "zarr" if path.is_dir() or path.suffix == ".zarr" else "netcdf/hdf5 (xarray)",
        "variables": variables,
        "time": {
            "start": str(times[0]),
            "test_start": str(times[split_at]),
            "observed": [str(times[split_at]), str(times[scored_from - 1])],
            "scored_start": str(times[scored_from]),
            "dt_unit": dt_unit,
        },
        "normalization": {"mean": mean.tolist(), "std": std.tolist(), "from": "seen environments, training period"},
        "dropped_environments": dropped,
        "missing_filled_fraction": float(np.mean(filled)),
    }
    dataset = Dataset(
        {
            "train": split(train_period, seen),
            "test_in": split(test_period, seen),
            "val_out": split(test_period, val),
            "test_out": split(test_period, test),
            "oracle": split(train_period, unseen),
            "observed": split(observed, torch.arange(n_envs)),
        },
        {
            "system": "gridded",
            "profile": "quick",
            "param_names": names,
            "channel_names": list(settings.variables),
            "dt": dt,
            "seed": settings.seed,
            "environment_split": {"seen": seen.tolist(), "val": val.tolist(), "test": test.tolist()},
            "settings": settings_record,
            "solver": solver,
            "version": f"weightspace {__version__}, torch {torch.__version__}",
        },
    )
    write_dataset(out, dataset)
    return ImportSummary(out, n_envs, n_seen, n_val, n_train, n_test, dropped, float(np.mean(filled)))


def _split_index(times: np.ndarray, split: str) -> int:
    """The index of the first test-period time step."""
    try:
        fraction = float(split)
    except ValueError:
        fraction = None
    if fraction is not None:
        if not 0 < fraction < 1:
            raise ConfigError(f"a time split given as a fraction must be in (0, 1), got {split}")
        return math.floor(fraction * len(times))
    if not np.issubdtype(times.dtype, np.datetime64):
        raise ConfigError(f"time split {split!r} is a date but the file's time axis is not (give a fraction)")
    try:
        at = np.datetime64(split)
    except ValueError:
        raise ConfigError(f"time split {split!r} is neither a fraction nor an ISO date") from None
    return int(np.searchsorted(times, at))


def synthetic_era5(
    hours: int = 96, lon_from: float = 0.0, land: bool = True, drop_step: int | None = None, step_deg: float = 5.0
) -> Any:
    """An ``xarray.Dataset`` in ERA5's layout to try the import on (and test it): 100 m winds
    ``u100``, ``v100`` hourly from 2018-01-01 on a coarse global grid, latitude descending,
    longitude 0..360 (or -180..180 with ``lon_from=-180``). The winds are waves travelling east at a
    speed that grows with latitude and varies with longitude, so that every region has its own
    dynamics. With ``land``, a 3 x 3 patch of missing values (NaN, as over land) and a region that
    is mostly missing, which the import drops. ``drop_step`` removes one time step (uneven steps)."""
    import pandas as pd
    import xarray as xr

    lat = np.arange(60, -60 - 1e-9, -step_deg)
    lon = (np.arange(0, 360, step_deg) + lon_from) % 360
    lon = np.where(lon >= 180, lon - 360, lon) if lon_from < 0 else lon
    time = pd.date_range("2018-01-01", periods=hours, freq="h")
    if drop_step is not None:
        time = time.delete(drop_step)
    t = np.arange(len(time))[:, None, None]
    la, lo = np.deg2rad(lat)[None, :, None], np.deg2rad(lon)[None, None, :]
    speed = 0.05 + 0.1 * np.abs(np.sin(la)) + 0.03 * np.cos(lo)
    u = np.sin(3 * lo - speed * t) * np.cos(la) + 0.3 * np.cos(2 * la)
    v = np.cos(3 * lo - speed * t + la) * np.cos(la)
    if land:
        box = (np.abs(lat[:, None] - 40) < 6) & (np.abs(((lon[None, :] + 360) % 360) - 20) < 6)  # 3 x 3 points
        u[:, box], v[:, box] = np.nan, np.nan
        big = (lat[:, None] < -10) & (((lon[None, :] + 360) % 360) >= 270)  # most of one region
        u[:, big], v[:, big] = np.nan, np.nan
    attrs = {"units": "m s**-1"}
    return xr.Dataset(
        {
            "u100": (("time", "latitude", "longitude"), u.astype("float32"), {**attrs, "long_name": "100 metre U"}),
            "v100": (("time", "latitude", "longitude"), v.astype("float32"), {**attrs, "long_name": "100 metre V"}),
        },
        coords={"time": time, "latitude": lat, "longitude": lon},
    )
