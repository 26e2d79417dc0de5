import h5py
import pytest
import torch

import weightspace as ws
from weightspace.data.dataset import Dataset, Split, load_dataset, write_dataset
from weightspace.data.simulation import build_dataset, simulate_split
from weightspace.errors import SimulationError, StorageError
from weightspace.registry import default_registry


@pytest.fixture(scope="module")
def lv():
    return default_registry().system("lotka-volterra", "quick", {"n_frames": 21, "n_train": 2, "n_test": 1})


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
    seen, unseen = lv.split(0)
    s = lv.settings
    assert data["train"].trajectories.shape == (len(seen) * s.n_train, s.n_frames, 2)
    assert data["test_in"].trajectories.shape[0] == len(seen) * s.n_test
    assert data["test_out"].trajectories.shape[0] == len(unseen) * s.n_test
    assert set(data["train"].env_index.tolist()) == set(seen.tolist())
    assert set(data["test_out"].env_index.tolist()) == set(unseen.tolist())
    assert torch.equal(data["train"].env_params, lv.environments()[data["train"].env_index].float())


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
    seen, unseen = lv.split(5)
    assert len(seen) == lv.settings.n_seen and len(seen) + len(unseen) == len(lv.environments())
    assert not set(seen.tolist()) & set(unseen.tolist())


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
        ("lambda-omega", {"n_beta": 2, "n_seen": 1, "n_frames": 2, "resolution": 16, "sim_resolution": 32}),
    ],
)
def test_state_shape_matches_the_simulated_frames(name, overrides):
    system = ws.system(name, **overrides)
    traj = system.simulate(torch.tensor([0]), 1, seed=0)
    assert tuple(traj.shape[3:]) == system.state_shape()
