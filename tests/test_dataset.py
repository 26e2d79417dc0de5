import h5py
import pytest
import torch

import weightspace as ws
from weightspace.data.dataset import Dataset, Split, load_dataset, write_dataset
from weightspace.data.simulation import build_dataset, simulate_split
from weightspace.errors import ConfigError, SimulationError, StorageError
from weightspace.registry import default_registry

LV_TINY = {"n_frames": 21, "n_train": 2, "n_test": 1}


@pytest.fixture(scope="module")
def lv():
    return default_registry().system("lotka-volterra", "quick", LV_TINY)


def test_build_and_round_trip(lv, tmp_path):
    data = build_dataset(lv, seed=3)
    path = tmp_path / "lv.h5"
    write_dataset(path, data)
    back = load_dataset(path)
    for name, split in data.splits.items():
        assert torch.equal(back[name].trajectories, split.trajectories)
        assert torch.equal(back[name].env_params, split.env_params)
        assert torch.equal(back[name].env_index, split.env_index)
    assert back.attrs["param_names"] == ["b", "d"] and back.attrs["channel_names"] == ["prey", "predator"]
    assert back.dt == pytest.approx(0.1) and back.attrs["seed"] == 3
    assert back.attrs["settings"]["n_frames"] == 21 and back.attrs["solver"]["rtol"] == 1e-9
    assert [p.name for p in tmp_path.iterdir()] == ["lv.h5"]


def test_split_layout(lv):
    data = build_dataset(lv, seed=0)
    seen, val, test = lv.split(0)
    s = lv.settings
    assert data["train"].trajectories.shape == (len(seen) * s.n_train, s.n_frames, 2)
    assert data["test_in"].trajectories.shape[0] == len(seen) * s.n_test
    assert data["val_out"].trajectories.shape[0] == len(val) * s.n_test
    assert data["test_out"].trajectories.shape[0] == len(test) * s.n_test
    assert set(data["train"].env_index.tolist()) == set(seen.tolist())
    assert set(data["val_out"].env_index.tolist()) == set(val.tolist())
    assert set(data["test_out"].env_index.tolist()) == set(test.tolist())
    assert torch.equal(data["train"].env_params, lv.environments()[data["train"].env_index].float())
    assert data.attrs["environment_split"] == {"seen": seen.tolist(), "val": val.tolist(), "test": test.tolist()}


def test_validation_is_carved_from_the_unseen_environments_without_moving_the_seen_ones(lv):
    wider = default_registry().system("lotka-volterra", "quick", {"val_fraction": 0.2})
    assert (lv.n_val_envs, wider.n_val_envs) == (26, 10)  # of 52 unseen: 26 and 10.4, rounded
    assert torch.equal(lv.split(4).seen, wider.split(4).seen)
    assert set(wider.split(4).val.tolist()) < set(lv.split(4).val.tolist()) | set(lv.split(4).test.tolist())


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"n_seen": 99}, "99 seen and 1 for validation leave 0 for test"),
        ({"n_seen": 100}, "100 seen and 1 for validation leave -1 for test"),
        ({"val_fraction": 0}, "val_fraction must be in"),
        ({"val_fraction": 1.0}, "val_fraction must be in"),
    ],
)
def test_a_split_without_validation_or_test_environments_is_refused(overrides, problem):
    with pytest.raises(ConfigError, match=problem):
        ws.system("lotka-volterra", "quick", **overrides)


def test_a_file_whose_splits_share_an_environment_is_refused(lv, tmp_path):
    data = build_dataset(lv, seed=0)
    leaky = dict(data.splits, val_out=data["test_out"])
    with pytest.raises(StorageError, match="are in both 'val_out' and 'test_out'"):
        write_dataset(tmp_path / "leak.h5", Dataset(leaky, data.attrs))
    assert not (tmp_path / "leak.h5").exists()


def test_a_file_from_before_validation_environments_asks_to_be_made_again(lv, tmp_path):
    write_dataset(tmp_path / "old.h5", build_dataset(lv, seed=0))
    with h5py.File(tmp_path / "old.h5", "a") as f:
        del f["val_out"]
    with pytest.raises(StorageError, match="before unseen environments were split into validation and test"):
        load_dataset(tmp_path / "old.h5")


def test_same_seed_same_data_and_chunking_does_not_matter(lv, monkeypatch):
    a = build_dataset(lv, seed=1)
    b = build_dataset(lv, seed=1)
    assert all(torch.equal(a[k].trajectories, b[k].trajectories) for k in a.splits)
    import weightspace.data.simulation as simulation

    monkeypatch.setattr(simulation, "CHUNK_TRAJECTORIES", 1)
    c = build_dataset(lv, seed=1)
    assert all(torch.allclose(a[k].trajectories, c[k].trajectories, atol=1e-6) for k in a.splits)
    d = build_dataset(lv, seed=2)
    assert not torch.equal(a["train"].trajectories, d["train"].trajectories)


def test_top_level_helper_builds_systems_with_overrides():
    import weightspace as ws

    kf = ws.system("kolmogorov", "quick", n_seen=3)
    assert kf.name == "kolmogorov" and kf.settings.n_seen == 3 and kf.settings.resolution == 32


def test_split_is_deterministic_and_seeded(lv):
    assert all(torch.equal(x, y) for x, y in zip(lv.split(5), lv.split(5)))
    assert not torch.equal(lv.split(5)[0], lv.split(6)[0])
    seen, val, test = lv.split(5)
    assert (len(seen), len(val)) == (lv.settings.n_seen, lv.n_val_envs)
    assert sorted([*seen.tolist(), *val.tolist(), *test.tolist()]) == list(range(len(lv.environments())))


def test_blow_up_is_reported_with_the_environment(lv, monkeypatch):
    monkeypatch.setattr(
        type(lv), "solve", lambda self, envs, x0: torch.full((len(envs), x0.shape[1], 3, 2), float("nan"))
    )
    with pytest.raises(SimulationError, match="lotka-volterra produced NaN or inf in environment b=0.5, d=0.5"):
        simulate_split(lv, torch.tensor([0]), 2, 0, "seen")


def test_corrupt_and_foreign_files_name_the_problem(lv, tmp_path):
    with pytest.raises(StorageError, match="no such file"):
        load_dataset(tmp_path / "none.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(StorageError, match="junk.h5 is not a readable HDF5 file"):
        load_dataset(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f.attrs["system"] = "x"
    with pytest.raises(StorageError, match="not a weightspace dataset: missing attributes profile"):
        load_dataset(tmp_path / "foreign.h5")
    data = build_dataset(lv, seed=0)
    write_dataset(tmp_path / "ok.h5", data)
    with h5py.File(tmp_path / "ok.h5", "a") as f:
        del f["test_out/env_index"]
    with pytest.raises(StorageError, match="lacks split 'test_out'"):
        load_dataset(tmp_path / "ok.h5")


def test_inconsistent_split_is_rejected():
    with pytest.raises(StorageError, match="split sizes disagree"):
        Split(torch.zeros(3, 2, 2), torch.zeros(2, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(StorageError, match="incomplete dataset"):
        write_dataset("/tmp/never.h5", Dataset({}, {}))


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("lotka-volterra", {"n_b": 2, "n_d": 2, "n_seen": 2, "n_frames": 3}),
        ("lambda-omega", {"n_beta": 3, "n_seen": 1, "n_frames": 2, "resolution": 16, "sim_resolution": 32}),
    ],
)
def test_state_shape_matches_the_simulated_frames(name, overrides):
    system = ws.system(name, **overrides)
    traj = system.simulate(torch.tensor([0]), 1, seed=0)
    assert tuple(traj.shape[3:]) == system.state_shape()


def test_observed_frames_of_simulated_data_never_appear_in_a_scored_window(lv):
    """What a method observes is a trajectory of its own seed stream, not the start of a scored one
    (the gridded importer's counterpart is in test_gridded.py)."""
    from weightspace.data.simulation import observed_frames

    data = build_dataset(lv, seed=0)
    for split in ("test_in", "val_out", "test_out"):
        envs = data[split].env_index.unique()
        observed = observed_frames(lv, envs, lv.settings.n_frames, seed=0)
        for env, frames in zip(envs.tolist(), observed):
            scored = data[split].trajectories[data[split].env_index == env].flatten(0, 1)
            assert not any(torch.equal(frame, other) for frame in frames for other in scored), (split, env)


def test_every_seed_of_a_study_is_scored_on_the_same_environments(lv):
    """The run's seed draws zoos and trajectories; the split has a seed of its own, so seeds pair
    environment by environment."""
    a, b = build_dataset(lv, seed=0), build_dataset(lv, seed=1)
    for split in ("train", "val_out", "test_out"):
        assert torch.equal(a[split].env_index, b[split].env_index)
    assert not torch.equal(a["test_out"].trajectories, b["test_out"].trajectories)
    other = build_dataset(default_registry().system("lotka-volterra", "quick", {**LV_TINY, "split_seed": 1}), seed=0)
    assert not torch.equal(a["test_out"].env_index, other["test_out"].env_index)
