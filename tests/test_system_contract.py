"""Plugin contracts: ``check_system`` on every built-in system and on broken ones; shapes checked
where data enter (a system's trajectories, a dataset file, a zoo's architecture); ``inspect`` failing
on a broken permutation symmetry. Command-line errors are one line and exit with status 2."""

import json
import types
from dataclasses import dataclass

import h5py
import pytest
import torch
from torch import nn

from weightspace.architecture import ArchitectureAdapter, Prediction
from weightspace.cli import main
from weightspace.data.dataset import load_dataset, write_dataset
from weightspace.data.simulation import build_dataset, simulate_split
from weightspace.errors import PluginError, SimulationError, StorageError
from weightspace.graph import Layout, LayoutBuilder
from weightspace.hookspecs import hookimpl
from weightspace.registry import default_registry
from weightspace.system import EnvironmentSplit, System, SystemSettings
from weightspace.testing import check_architecture, check_system

TINY = {
    "lotka-volterra": {"n_b": 2, "n_d": 2, "n_seen": 2, "n_frames": 6},
    "lambda-omega": {"n_beta": 4, "n_seen": 2, "n_frames": 4, "resolution": 16, "sim_resolution": 32, "burn_in": 0.2},
    "kolmogorov": {"n_re": 4, "n_seen": 2, "n_frames": 4, "resolution": 16, "sim_resolution": 16, "burn_in": 0.5},
    "navier-stokes": {
        "n_amplitude": 2,
        "n_phase": 2,
        "n_seen": 2,
        "n_frames": 4,
        "resolution": 16,
        "sim_resolution": 16,
        "burn_in": 0.5,
    },
    "cylinder-flow": {
        "n_re": 2,
        "n_radius": 2,
        "n_seen": 2,
        "n_frames": 3,
        "dt": 2,
        "nx": 32,
        "ny": 16,
        "burn_in": 0.2,
    },
}
"""Settings small enough for a contract check in well under a second per system."""


def test_every_built_in_system_is_checked():
    entries = default_registry().entries("systems")
    built_in = {name for name, entry in entries.items() if entry.source.startswith("systems (weightspace")}
    assert built_in == {*TINY, "gridded"}


@pytest.mark.parametrize("name", sorted(TINY))
def test_built_in_systems_keep_the_contract(name):
    check_system(default_registry().get("systems", name), overrides=TINY[name], seed=3)


def test_gridded_keeps_the_contract(tmp_path):
    kolmogorov = default_registry().system("kolmogorov", "quick", {**TINY["kolmogorov"], "n_train": 2, "n_test": 1})
    write_dataset(tmp_path / "k.h5", build_dataset(kolmogorov, seed=0))
    check_system(default_registry().system("gridded", "quick", {"path": str(tmp_path / "k.h5")}))


# -- systems that break the contract -------------------------------------------------------------
@dataclass(frozen=True)
class TinySettings(SystemSettings):
    resolution: int = 4


class TwoChannels(System):
    """A correct 2-channel system (fields decaying at the environment's rate); each subclass below
    breaks one rule."""

    name = "two-channels"
    param_names = ("rate",)
    channel_names = ("u", "v")
    Settings = TinySettings
    profiles = {"quick": {"n_frames": 3, "n_seen": 2, "n_train": 2, "n_test": 1}}

    def environments(self) -> torch.Tensor:
        return torch.tensor([[0.1], [0.2], [0.3], [0.4]], dtype=torch.float64)

    def state_shape(self) -> tuple[int, ...]:
        return (2, self.settings.resolution, self.settings.resolution)

    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, *self.state_shape(), generator=generator, dtype=torch.float64)

    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        t = torch.arange(self.settings.n_frames, dtype=torch.float64).view(1, 1, -1, 1, 1, 1)
        return (x0.unsqueeze(2) * torch.exp(-envs[:, 0].view(-1, 1, 1, 1, 1, 1) * t)).float()


class OneChannelOut(TwoChannels):
    name = "one-channel-out"

    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return super().solve(envs, x0)[:, :, :, :1]  # [E, N, T, 1, H, W]: state_shape says 2 channels


class DoubleOut(TwoChannels):
    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return super().solve(envs, x0).double()


class NaNOut(TwoChannels):
    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return super().solve(envs, x0) / 0.0 * 0.0


class Unseeded(TwoChannels):
    def initial_conditions(self, env: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, *self.state_shape(), dtype=torch.float64)  # ignores its generator


class FlattenedOut(TwoChannels):
    def solve(self, envs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return super().solve(envs, x0).flatten(0, 1)  # [E * N, T, 2, H, W]


class ExtraColumn(TwoChannels):
    def environments(self) -> torch.Tensor:
        return torch.tensor([[0.1, 1.0], [0.2, 1.0], [0.3, 1.0], [0.4, 1.0]], dtype=torch.float64)


class ThreeNames(TwoChannels):
    channel_names = ("u", "v", "w")


class FlatField(TwoChannels):
    def state_shape(self) -> tuple[int, ...]:
        return (2, 16)


class ShuffledGrid(TwoChannels):
    """A grid whose order changes on every call (rotated by one each time: never the same twice)."""

    calls = 0

    def environments(self) -> torch.Tensor:
        ShuffledGrid.calls += 1
        return super().environments().roll(ShuffledGrid.calls, dims=0)


class WrongSplit(TwoChannels):
    def split(self, seed: int) -> EnvironmentSplit:
        return EnvironmentSplit(torch.tensor([0]), torch.tensor([1]), torch.tensor([2, 3]))


class OverlappingSplit(TwoChannels):
    def split(self, seed: int) -> EnvironmentSplit:
        return EnvironmentSplit(torch.tensor([0, 1]), torch.tensor([2]), torch.tensor([2, 3]))


class TwoWaySplit(TwoChannels):
    def split(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor([0, 1]), torch.tensor([2, 3])


class TensorAttributes(TwoChannels):
    def solver_attributes(self) -> dict:
        return {"step": torch.tensor(0.1)}


class WrongTerms(TwoChannels):
    def polynomial_coefficients(self, env_params: torch.Tensor) -> dict:
        return {"x": {"x": -float(env_params[0])}}


class FlatStatistics(TwoChannels):
    def statistics(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.flatten(2)  # [E, N, T * C * H * W]: no frame axis


class BadProfile(TwoChannels):
    profiles = {"quick": {"n_frames": 3, "n_seen": 2}, "paper": {"resolutoin": 64}}


@pytest.mark.parametrize(
    ("system", "message"),
    [
        (
            OneChannelOut,
            r"'one-channel-out': simulate\(\) returned trajectories of shape \[2, 2, 3, 1, 4, 4\]; "
            r"expected \[E, N, T, \*state_shape\(\)\] = \[2, 2, 3, 2, 4, 4\]",
        ),
        (DoubleOut, "trajectories are torch.float64; the data format stores float32"),
        (NaNOut, "trajectories hold NaN or inf"),
        (Unseeded, "the same seed gave different trajectories"),
        (ExtraColumn, r"environments\(\) has shape \[4, 2\]; expected \[E, 1\] \(one column per parameter rate\)"),
        (ThreeNames, r"state_shape\(\) is \(2, 4, 4\) but channel_names names 3 channel\(s\) \(u, v, w\)"),
        (FlatField, r"state_shape\(\) is \(2, 16\); expected \(C, H, W\) for fields"),
        (ShuffledGrid, r"environments\(\) changes between calls"),
        (WrongSplit, r"split\(1\) gives 1 seen environments, n_seen is 2"),
        (OverlappingSplit, r"split\(1\) is not a partition of the 4 environments into seen, val and test"),
        (TwoWaySplit, r"split\(1\) must give \(seen, val, test\) environment indices"),
        (TensorAttributes, r"settings and solver_attributes\(\) are recorded as JSON: Object of type Tensor"),
        (WrongTerms, r"polynomial_coefficients\(\) must map each of u, v to its terms"),
        (
            FlatStatistics,
            r"statistics\(\) of \[E, N, T, \*state\] frames must be finite \[E, N, T, S\], got \[2, 2, 96\]",
        ),
        (BadProfile, "unknown config key 'resolutoin' for system 'two-channels', profile 'paper'"),
    ],
)
def test_broken_systems_fail_the_contract_naming_the_rule(system, message):
    check_system(TwoChannels, seed=1)  # the unbroken original passes
    with pytest.raises(AssertionError, match=message):
        check_system(system, seed=1)


@pytest.mark.parametrize(
    ("system", "error", "message"),
    [
        (
            FlattenedOut,
            PluginError,
            r"system 'two-channels' returned trajectories of shape \[4, 3, 2, 4, 4\]; "
            r"expected \[E, N, T, \*state_shape\(\)\] = \[2, 2, 3, 2, 4, 4\] \(channels: u, v\)",
        ),
        (DoubleOut, PluginError, "system 'two-channels' returned torch.float64 trajectories; the data format stores"),
        (NaNOut, SimulationError, "two-channels produced NaN or inf in environment rate=0.1"),
    ],
)
def test_simulation_checks_what_a_system_returns(system, error, message):
    assert simulate_split(TwoChannels(), torch.tensor([0, 2]), 2, 0, "seen").shape == (2, 2, 3, 2, 4, 4)
    with pytest.raises(error, match=message):
        simulate_split(system(), torch.tensor([0, 2]), 2, 0, "seen")


# -- shapes checked where data enter, through the command line ---------------------------------
@dataclass(frozen=True)
class CNNConfig:
    channels: int = 1
    out_channels: int = 1
    hidden: int = 4
    grid_size: tuple[int, int] = (4, 4)


class FixedChannelCNN(ArchitectureAdapter):
    """The docs' toy CNN: its channels do not follow the data (it has no ``data_overrides``)."""

    name = "fixed-channel-cnn"
    Config = CNNConfig
    prediction = Prediction.ONE_STEP
    input_ndim = 3

    def _build(self) -> nn.Module:
        c = self.config
        return nn.Sequential(
            nn.Conv2d(c.channels, c.hidden, 3, padding=1, padding_mode="circular"),
            nn.ReLU(),
            nn.Conv2d(c.hidden, c.out_channels, 3, padding=1, padding_mode="circular"),
        )

    def layout(self) -> Layout:
        b = LayoutBuilder()
        b.dense("conv0", "0", permutation="hidden", inputs=None)
        b.dense("conv1", "2", permutation=None, inputs="hidden")
        return b.build()

    def example_input(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.config.channels, *self.config.grid_size, generator=generator)


class InputOnlyCNN(FixedChannelCNN):
    """Follows the data's input channels, but always predicts one channel."""

    name = "input-only-cnn"

    @classmethod
    def data_overrides(cls, state_shape: tuple[int, ...]) -> dict:
        return {"channels": state_shape[0]}


class MislaidCNN(FixedChannelCNN):
    """Three convolutions; the layout forgets that the last one's input axis moves with set 'second'."""

    name = "mislaid-cnn"

    def _build(self) -> nn.Module:
        c = self.config
        return nn.Sequential(
            nn.Conv2d(c.channels, c.hidden, 3, padding=1, padding_mode="circular"),
            nn.ReLU(),
            nn.Conv2d(c.hidden, c.hidden, 3, padding=1, padding_mode="circular"),
            nn.ReLU(),
            nn.Conv2d(c.hidden, c.out_channels, 3, padding=1, padding_mode="circular"),
        )

    def layout(self) -> Layout:
        b = LayoutBuilder()
        b.dense("conv0", "0", permutation="first", inputs=None)
        b.dense("conv1", "2", permutation="second", inputs="first")
        b.dense("conv2", "4", permutation=None, inputs=None)  # wrong: its input axis moves with "second"
        return b.build()


class CorrectCNN(MislaidCNN):
    name = "correct-cnn"

    def layout(self) -> Layout:
        b = LayoutBuilder()
        b.dense("conv0", "0", permutation="first", inputs=None)
        b.dense("conv1", "2", permutation="second", inputs="first")
        b.dense("conv2", "4", permutation=None, inputs="second")
        return b.build()


PLUGIN = types.ModuleType("contract_test_plugin")
PLUGIN.weightspace_systems = hookimpl(lambda: [TwoChannels, OneChannelOut])
PLUGIN.weightspace_architectures = hookimpl(lambda: [FixedChannelCNN, InputOnlyCNN, MislaidCNN, CorrectCNN])


@pytest.fixture
def cli(capsys):
    """``main(argv)`` with this file's plugin registered in the process-wide registry: ``(code, out, err)``."""
    default_registry.cache_clear()
    default_registry().register(PLUGIN)

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    default_registry.cache_clear()


def one_line(err: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_simulate_rejects_trajectories_that_contradict_the_state_shape(cli, tmp_path):
    assert cli("simulate", "two-channels", "--out", tmp_path / "ok")[0] == 0
    code, _, err = cli("simulate", "one-channel-out", "--out", tmp_path / "bad")
    assert code == 2
    assert one_line(err) == (
        "error: system 'one-channel-out' returned trajectories of shape [2, 3, 3, 1, 4, 4]; "
        "expected [E, N, T, *state_shape()] = [2, 3, 3, 2, 4, 4] (channels: u, v)\n"
    )
    assert not (tmp_path / "bad" / "one-channel-out-quick.h5").exists()


def _rewrite(f: h5py.File, name: str, dtype: str) -> None:
    data = f[name][()].astype(dtype)
    del f[name]
    f[name] = data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: f.attrs.__setitem__("channel_names", ["u"]),
            r"split 'train' of system 'two-channels' holds trajectories \[4, 3, 2, 4, 4\]; "
            r"expected \[n, T, 1\] or \[n, T, 1, H, W\] for its channels u",
        ),
        (
            lambda f: f.attrs.__setitem__("param_names", ["rate", "depth"]),
            r"split 'train' of system 'two-channels' holds env_params \[4, 1\]; expected \[n, 2\] for its "
            r"parameters rate, depth",
        ),
        (
            lambda f: _rewrite(f, "test_in/trajectories", "float64"),
            "split 'test_in' of system 'two-channels' holds torch.float64 trajectories; the format stores float32",
        ),
    ],
)
def test_loading_a_dataset_checks_its_arrays_against_its_names(cli, tmp_path, edit, message):
    assert cli("simulate", "two-channels", "--out", tmp_path)[0] == 0
    path = tmp_path / "two-channels-quick.h5"
    load_dataset(path)  # as written: consistent
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(StorageError, match=message):
        load_dataset(path)
    code, _, err = cli("simulate", "gridded", "--set", f"path={path}", "--out", tmp_path / "again")
    assert code == 2 and one_line(err).startswith(f"error: {path}: split ")


def test_writing_a_dataset_that_contradicts_its_names_is_refused(tmp_path):
    system = TwoChannels()
    dataset = build_dataset(system, seed=0)
    dataset.attrs["channel_names"] = ["u", "v", "w"]
    with pytest.raises(StorageError, match="expected \\[n, T, 3\\] or \\[n, T, 3, H, W\\] for its channels u, v, w"):
        write_dataset(tmp_path / "never.h5", dataset)
    assert not (tmp_path / "never.h5").exists()


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        (
            "fixed-channel-cnn",
            "error: architecture 'fixed-channel-cnn' expects states like [1, 4, 4] (its example input), but system "
            "'two-channels' has states [2, 4, 4]: Given groups=1, weight of size [4, 1, 3, 3], expected input",
        ),
        (
            "input-only-cnn",
            "error: architecture 'input-only-cnn' expects states like [2, 4, 4] (its example input) and maps system "
            "'two-channels''s states [2, 4, 4] to [1, 4, 4]; its output must be shaped like its input\n",
        ),
        (
            "mlp-node",
            "error: architecture 'mlp-node' takes states of 1 dimension(s) but system 'two-channels' has states "
            "of shape [2, 4, 4]\n",
        ),
    ],
)
def test_zoo_build_checks_the_architecture_against_the_data_before_simulating(cli, tmp_path, arch, message):
    code, _, err = cli("zoo", "build", "--system", "two-channels", "--arch", arch, "--out", tmp_path)
    assert code == 2 and one_line(err).startswith(message)
    assert not (tmp_path / "dataset.h5").exists()


# -- inspect and check_architecture name the permutation set at fault ------------------------------
def test_inspect_fails_naming_the_broken_permutation_set(cli):
    code, out, err = cli("inspect", "correct-cnn", "--json")
    assert code == 0 and json.loads(out)["broken_permutations"] == {}
    code, out, err = cli("inspect", "mislaid-cnn", "--json")
    assert code == 2
    report = json.loads(out)  # the report is still printed
    assert list(report["broken_permutations"]) == ["second"] and report["broken_permutations"]["second"] > 1e-3
    assert one_line(err).startswith("error: mislaid-cnn: permuting hidden-unit set(s) 'second' (output changed by ")
    code, out, err = cli("inspect", "mislaid-cnn")
    assert code == 2 and "broken_permutations" in out and "'second'" in one_line(err)


def test_check_architecture_names_the_broken_permutation_set():
    check_architecture(CorrectCNN(), seed=2)
    with pytest.raises(AssertionError, match="mislaid-cnn: permuting hidden units changed the output: set 'second' by"):
        check_architecture(MislaidCNN(), seed=2)
