"""Importing gridded data: a synthetic ERA5-style NetCDF (time, latitude, longitude; u100, v100;
hourly) goes through import, zoo, train, evaluate and the bench; real-data problems are named."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from weightspace.cli import main
from weightspace.data.dataset import load_dataset
from weightspace.data.gridded import GriddedImport, import_gridded, synthetic_era5
from weightspace.errors import ConfigError
from weightspace.registry import default_registry


@pytest.fixture(scope="module")
def era5_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("era5") / "era5-like.nc"
    synthetic_era5().to_netcdf(path, engine="h5netcdf")
    return path


SETTINGS = GriddedImport(("u100", "v100"), "regions:2x4", "2018-01-03", (16, 16), n_frames=12, n_seen=3, seed=1)


def test_import_cuts_regions_splits_time_and_normalizes_with_training_statistics(era5_file, tmp_path):
    summary = import_gridded(era5_file, SETTINGS, tmp_path / "data.h5")
    # 8 regions of 30 x 90 degrees; the mostly-land one is dropped
    assert summary.n_envs == 7 and len(summary.dropped) == 1 and summary.dropped[0]["missing_fraction"] > 0.5
    # 48 h / 12 per period; the test period's first 12 h are the observed window, not scored
    assert summary.n_seen == 3 and summary.n_val == 2 and summary.n_train == 4 and summary.n_test == 3
    data = load_dataset(tmp_path / "data.h5")
    assert data["train"].trajectories.shape == (3 * 4, 12, 2, 16, 16)
    assert data["val_out"].trajectories.shape == (2 * 3, 12, 2, 16, 16)
    assert data["test_out"].trajectories.shape == (2 * 3, 12, 2, 16, 16)
    assert data["oracle"].trajectories.shape == (4 * 4, 12, 2, 16, 16)
    assert data["observed"].trajectories.shape == (7, 12, 2, 16, 16)
    assert data["observed"].env_index.tolist() == list(range(7))
    for split in data.splits.values():
        assert torch.isfinite(split.trajectories).all()  # the land patch is filled
    train = data["train"].trajectories
    assert train.mean(dim=(0, 1, 3, 4)).abs().max() < 1e-4  # normalized on the seen training period
    assert (train.std(dim=(0, 1, 3, 4)) - 1).abs().max() < 1e-3
    attrs = data.attrs
    assert attrs["system"] == "gridded" and attrs["channel_names"] == ["u100", "v100"] and attrs["dt"] == 1.0
    assert attrs["param_names"] == ["lat", "lon"]
    assert attrs["solver"]["variables"]["u100"]["long_name"] == "100 metre U"
    assert attrs["solver"]["time"]["test_start"].startswith("2018-01-03")
    assert 0 < attrs["solver"]["missing_filled_fraction"] < 0.05
    lons = [p[1] for p in attrs["settings"]["environments"]]
    assert min(lons) < 0 < max(lons) <= 180  # 0..360 read as -180..180
    # seen, validation and test environments are disjoint and together all the kept ones, as recorded
    seen, val, test = (set(data[k].env_index.tolist()) for k in ("train", "val_out", "test_out"))
    assert not seen & val and not seen & test and not val & test and seen | val | test == set(range(7))
    assert {k: set(v) for k, v in attrs["environment_split"].items()} == {"seen": seen, "val": val, "test": test}
    assert set(data["oracle"].env_index.tolist()) == val | test


def test_longitudes_0_360_and_minus_180_180_import_the_same(era5_file, tmp_path):
    shifted = tmp_path / "shifted.nc"
    synthetic_era5(lon_from=-180).to_netcdf(shifted, engine="h5netcdf")
    a = load_dataset(import_gridded(era5_file, SETTINGS, tmp_path / "a.h5").path)
    b = load_dataset(import_gridded(shifted, SETTINGS, tmp_path / "b.h5").path)
    for split in a.splits:
        assert torch.equal(a[split].trajectories, b[split].trajectories)
        assert torch.equal(a[split].env_params, b[split].env_params)


def test_two_periods_apart_as_in_the_era5_recipe(tmp_path):
    """January 2018 for training, January 2019 for testing: one file, a year's gap at the split."""
    train = synthetic_era5(hours=48)
    test = synthetic_era5(hours=48).assign_coords(time=train.time + np.timedelta64(365, "D"))
    path = tmp_path / "two-years.nc"
    xr.concat([train, test], dim="time").to_netcdf(path, engine="h5netcdf")
    summary = import_gridded(
        path, GriddedImport(("u100", "v100"), "regions:2x4", "2019-01-01", (8, 8), 12), tmp_path / "d.h5"
    )
    assert summary.n_train == 4 and summary.n_test == 3
    with pytest.raises(ConfigError, match="uneven time steps in the test period"):
        path2 = tmp_path / "gappy.nc"
        xr.concat([train, test.isel(time=[*range(20), *range(21, 48)])], dim="time").to_netcdf(path2, engine="h5netcdf")
        import_gridded(path2, GriddedImport(("u100",), "regions:2x4", "2019-01-01", (8, 8), 12), tmp_path / "e.h5")


def test_environments_by_a_dimension(tmp_path):
    members = xr.concat([synthetic_era5(land=False) * (1 + 0.2 * m) for m in range(4)], dim="member")
    members = members.assign_coords(member=[0.0, 1.0, 2.0, 3.0])
    path = tmp_path / "members.nc"
    members.to_netcdf(path, engine="h5netcdf")
    settings = GriddedImport(("u100",), "dim:member", "0.5", (8, 8), n_frames=12, n_seen=2)
    data = load_dataset(import_gridded(path, settings, tmp_path / "m.h5").path)
    assert data.attrs["param_names"] == ["member"]
    assert data["train"].trajectories.shape == (2 * 4, 12, 1, 8, 8)


def _bands(lat_name: str = "latitude") -> tuple[xr.Dataset, np.ndarray]:
    """A field 1 on the rows at 0, 20, 40, 60 degrees and 0 on those at 10, 30, 50, 70, growing in
    time (so that it has a spread to normalize by), on 8 x 16 points."""
    lat, lon = np.arange(0.0, 80.0, 10.0), np.arange(0.0, 160.0, 10.0)
    band = (np.arange(8) % 2 == 0).astype(float)  # 1, 0, 1, 0, ... by latitude row
    growth = 1 + np.arange(48) / 10
    u = growth[:, None, None] * band[None, :, None] * np.ones(len(lon))[None, None, :]
    time = np.datetime64("2018-01-01T00", "ns") + np.arange(48) * np.timedelta64(1, "h")
    return xr.Dataset(
        {"u": (("time", lat_name, "longitude"), u.astype("float32"))},
        coords={"time": time, lat_name: lat, "longitude": lon},
    ), growth


def _tile_rows(ds: xr.Dataset, growth: np.ndarray, tmp_path, env_by: str = "regions:1x4") -> np.ndarray:
    """The raw (unnormalized) tile values of the first environment's observed window, divided by
    the growth in time: one value per tile row, checked equal along the row and over time."""
    path = tmp_path / f"bands-{len(list(tmp_path.iterdir()))}.nc"  # a fresh file per call
    ds.to_netcdf(path, engine="h5netcdf")
    settings = GriddedImport(("u",), env_by, "0.5", (4, 4), n_frames=12, n_seen=1)
    data = load_dataset(import_gridded(path, settings, path.with_suffix(".h5")).path)
    norm = data.attrs["solver"]["normalization"]
    raw = data["observed"].trajectories.double() * norm["std"][0] + norm["mean"][0]  # [E, 12, 1, 4, 4]
    raw = raw[0] / torch.from_numpy(growth[24:36]).view(12, 1, 1, 1)  # the test period's first 12 h
    rows = raw[0, 0, :, 0]
    assert torch.allclose(raw, rows.view(1, 1, 4, 1).expand_as(raw), atol=1e-4)
    return rows.numpy()


def test_tiles_of_a_latitude_longitude_grid_are_area_weighted_by_cos_latitude(tmp_path):
    """Issue 27: a tile row averaging a row at latitude a (value 1) and one at b (value 0) is
    cos(a) / (cos(a) + cos(b)), each cell weighted by its area, not the plain 1/2."""
    ds, growth = _bands()
    cos = np.cos(np.deg2rad(np.arange(0.0, 80.0, 10.0)))
    expected = cos[0::2] / (cos[0::2] + cos[1::2])  # tile rows (0, 10), (20, 30), (40, 50), (60, 70)
    rows = _tile_rows(ds, growth, tmp_path)
    assert np.allclose(rows, expected, atol=1e-4) and not np.allclose(rows, 0.5, atol=1e-2)
    # without a latitude (a y axis, which need not be degrees) every cell counts the same
    plain, _ = _bands("y")
    assert np.allclose(_tile_rows(plain, growth, tmp_path), 0.5, atol=1e-4)
    # environments from a dimension keep plain averages although the grid has a latitude
    members = xr.concat([ds * (1 + m) for m in range(3)], dim="member").assign_coords(member=[0.0, 1.0, 2.0])
    assert np.allclose(_tile_rows(members, growth, tmp_path, "dim:member"), 0.5, atol=1e-4)


def test_area_weights_leave_missing_values_out_of_numerator_and_denominator():
    from weightspace.data.gridded import _resample

    field = np.array([[1.0, np.nan], [0.0, 0.0]])[None, None]  # [T, C, y=2 (lat 0, 60), x=2]
    data, weight = _resample(field, (1, 1), np.array([0.0, 60.0]))
    assert float(weight) == pytest.approx(0.75)  # the valid fraction is a plain count
    assert float(data) == pytest.approx(1 / (1 + 2 * 0.5))  # 1 * cos 0 over cos 0 + 2 cos 60
    data, _ = _resample(field, (1, 1))
    assert float(data) == pytest.approx(1 / 3)  # no latitude: the plain mean of the valid cells


@pytest.mark.parametrize(
    ("dataset", "settings", "message"),
    [
        (synthetic_era5(), {"variables": ("u100", "t2m")}, "no variable t2m"),
        (synthetic_era5(drop_step=30), {}, "uneven time steps in the training period"),
        (synthetic_era5(), {"env_by": "regions:40x10"}, "too small for 40 x 10 regions"),
        (synthetic_era5(), {"env_by": "basins"}, "env_by must be regions:RxC or dim:NAME"),
        (synthetic_era5(), {"env_by": "dim:member"}, "no dimension 'member'"),
        (synthetic_era5(), {"time_split": "2018-01-04T20"}, "test period has 4 time steps"),
        (synthetic_era5(), {"time_split": "2018-01-04T04"}, "test period has 20 time steps; it needs at least 2 x"),
        (synthetic_era5(), {"time_split": "1.5"}, "must be in \\(0, 1\\)"),
        (synthetic_era5(), {"max_missing": 0.0, "env_by": "regions:1x2"}, "only 0 environment"),
        (synthetic_era5().rename({"latitude": "y_index"}), {}, "no latitude coordinate"),
    ],
)
def test_real_data_problems_are_named(tmp_path, dataset, settings, message):
    path = tmp_path / "bad.nc"
    dataset.to_netcdf(path, engine="h5netcdf")
    options = {"variables": ("u100", "v100"), "env_by": "regions:2x4", "n_frames": 12, "tile": (16, 16), **settings}
    with pytest.raises(ConfigError, match=message):
        import_gridded(path, GriddedImport(**options), tmp_path / "out.h5")


def test_the_gridded_system_serves_the_file_by_stream(era5_file, tmp_path):
    path = import_gridded(era5_file, SETTINGS, tmp_path / "data.h5").path
    system = default_registry().system("gridded", "quick", {"path": str(path)})
    assert system.channel_names == ("u100", "v100") and system.state_shape() == (2, 16, 16)
    assert system.settings.n_frames == 12 and system.settings.dt == 1.0
    seen, val, test = system.split(seed=123)  # the file's split whatever the seed
    unseen = torch.cat([val, test]).sort().values
    data = load_dataset(path)
    assert seen.tolist() == sorted(set(data["train"].env_index.tolist()))
    assert val.tolist() == sorted(set(data["val_out"].env_index.tolist())) and system.n_val_envs == len(val)
    observed = system.simulate(unseen[:2], 1, 0, "observed")
    assert torch.equal(observed[0, 0], data["observed"].trajectories[unseen[0]])
    with pytest.raises(ConfigError, match="has 1 observed trajectories"):
        system.simulate(unseen[:1], 2, 0, "observed")
    assert system.simulate(unseen, 4, 0, "oracle").shape == (len(unseen), 4, 12, 2, 16, 16)
    with pytest.raises(ConfigError, match="has 4 oracle trajectories"):
        system.simulate(unseen, 5, 0, "oracle")
    with pytest.raises(ConfigError, match="needs system_settings path"):
        default_registry().system("gridded", "quick", {})
    with pytest.raises(ConfigError, match="n_train cannot exceed"):
        default_registry().system("gridded", "quick", {"path": str(path), "n_train": 9})


GRIDDED_RUN = """
system = "gridded"
architecture = "fno"
seed = 0

[system_settings]
path = "{path}"
n_train = 3
n_test = 2

[architecture_config]
hidden_channels = 8
n_layers = 2
n_modes = [4, 4]

[zoo]
size = 3
base_steps = 60
expert_steps = 20
eval_every = 10

[encoder]
width = 16
latent_dim = 4
heads = 2
depth = 1

[encoder_training]
steps = 30
n_probes = 4

[generator]
hidden = 16
depth = 1
heads = 2
sample_steps = 5

[prompter]
dim = 8
hidden = 8

[generator_training]
steps = 30
max_frames = 4
"""


@pytest.mark.slow
def test_imported_data_through_zoo_train_evaluate_and_bench(era5_file, tmp_path):
    """The whole pipeline on the synthetic ERA5-style file, through the command line (a minute)."""
    data = tmp_path / "era5.h5"
    argv = ["import", "gridded", "--input", str(era5_file), "--vars", "u100,v100", "--env-by", "regions:2x4"]
    argv += ["--time-split", "2018-01-03", "--tile", "16x16", "--frames", "12", "--n-seen", "3", "--out", str(data)]
    assert main(argv) == 0
    config = tmp_path / "gridded.toml"
    config.write_text(GRIDDED_RUN.format(path=data))
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(run)]) == 0
    results = tmp_path / "results.json"
    methods = ["--method", "dynadiff", "--method", "one-for-all", "--method", "one-per-env", "--method", "nearest-zoo"]
    assert (
        main(["evaluate", "--run", str(run), *methods, "--frames", "3", "--candidates", "2", "--out", str(results)])
        == 0
    )
    rows = {(r["method"], r["split"]): r for r in json.loads(results.read_text())}
    assert len(rows) == 12 and all(np.isfinite(r["rmse_mean"]) for r in rows.values())
    assert rows[("one-per-env", "val_out")]["n_envs"] == 2 and rows[("one-per-env", "test_out")]["n_envs"] == 2
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        'candidates = 2\nobserved_frames = 3\nfinetune_steps = 5\nbaselines = ["one-for-all", "one-per-env"]\n'
        '[systems.era5-like]\nconfig = "gridded.toml"\n[methods.dynadiff]\n'
    )
    bench = tmp_path / "bench"
    assert main(["bench", str(matrix), "--out", str(bench)]) == 0
    report = (bench / "report.md").read_text()
    assert "era5-like / fno" in report and (bench / "environment-map-era5-like-fno.png").is_file()


def test_any_file_in_the_dataset_format_serves_as_gridded_data(era5_file, tmp_path):
    """A file written by other means: no import record, no oracle split."""
    from weightspace.data.dataset import Dataset, write_dataset

    imported = load_dataset(import_gridded(era5_file, SETTINGS, tmp_path / "data.h5").path)
    settings = {k: v for k, v in imported.attrs["settings"].items() if k != "environments"}
    own = Dataset({k: v for k, v in imported.splits.items() if k != "oracle"}, {**imported.attrs, "settings": settings})
    write_dataset(tmp_path / "own.h5", own)
    system = default_registry().system("gridded", "quick", {"path": str(tmp_path / "own.h5")})
    assert torch.equal(system.environments(), torch.tensor(imported.attrs["settings"]["environments"]).double())
    assert system.settings.n_train == 4 and system.settings.n_seen == 3
    seen, _, unseen = system.split(0)
    assert system.simulate(unseen, 2, 0, "unseen").shape == (len(unseen), 2, 12, 2, 16, 16)
    with pytest.raises(ConfigError, match="no 'oracle' split"):
        system.simulate(unseen, 1, 0, "oracle")


def _leaks(observed: torch.Tensor, scored: torch.Tensor) -> bool:
    """Whether any observed frame ``[L, ...]`` is a frame of a scored window ``[n, T, ...]``: the
    synthetic waves travel, so frames of different time steps differ and an equal frame means the
    same time step (an overlap in time, or the very window)."""
    return any(torch.equal(frame, other) for frame in observed for other in scored.flatten(0, 1))


@pytest.mark.parametrize("stride", [None, 5])
def test_observed_frames_never_overlap_a_scored_test_window(era5_file, tmp_path, stride):
    """Issue 27: the observed frames were frames 0..L-1 of the first scored test window. Now they
    come from a window set aside before the scored ones, for every environment, also when scored
    windows overlap each other (stride < n_frames)."""
    from dataclasses import replace

    from weightspace.evaluate.adaptation import observed_frames

    path = import_gridded(era5_file, replace(SETTINGS, stride=stride), tmp_path / "data.h5").path
    system = default_registry().system("gridded", "quick", {"path": str(path)})
    data = load_dataset(path)
    seen, val, test = system.split(0)
    for envs, stream, split in ((seen, "seen", "test_in"), (val, "unseen", "val_out"), (test, "unseen", "test_out")):
        observed = observed_frames(system, envs, system.settings.n_frames, seed=0)  # what methods see
        for i, env in enumerate(envs.tolist()):
            scored = data[split].trajectories[data[split].env_index == env]
            if stream == "unseen":
                assert torch.equal(system.simulate(envs[i : i + 1], len(scored), 0, stream)[0], scored)
            assert len(scored) >= 3 and not _leaks(observed[i], scored)
            # the old behaviour (the observed stream served test[:1], the first scored window) fails it
            assert _leaks(scored[0], scored)
    times = data.attrs["solver"]["time"]
    assert times["observed"] == ["2018-01-03T00:00:00.000000000", "2018-01-03T11:00:00.000000000"]
    assert times["test_start"] == times["observed"][0] and times["scored_start"].startswith("2018-01-03T12")


def test_files_without_an_observed_window_serve_no_observed_frames(era5_file, tmp_path):
    from weightspace.data.dataset import Dataset, write_dataset

    imported = load_dataset(import_gridded(era5_file, SETTINGS, tmp_path / "data.h5").path)
    without = {k: v for k, v in imported.splits.items() if k != "observed"}
    write_dataset(tmp_path / "old.h5", Dataset(without, imported.attrs))  # as imported before issue 27
    with pytest.raises(ConfigError, match="imported by an older weightspace.*import it again"):
        default_registry().system("gridded", "quick", {"path": str(tmp_path / "old.h5")})
    settings = {k: v for k, v in imported.attrs["settings"].items() if k != "environments"}
    write_dataset(tmp_path / "own.h5", Dataset(without, {**imported.attrs, "settings": settings}))
    system = default_registry().system("gridded", "quick", {"path": str(tmp_path / "own.h5")})
    with pytest.raises(ConfigError, match="no 'observed' split"):
        system.simulate(system.split(0)[1], 1, 0, "observed")
