import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from weightspace.graph import GraphSpec, LayoutBuilder, Member, WeightGraph

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
"""The runnable third-party plugins of docs/plugins.md, one folder each."""


def install_example(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` the example plugin ``docs/examples/<name>`` into a private target directory, as
    a user installs a package from outside the repository (nothing else is touched); returns the
    target, to put on ``sys.path`` or ``PYTHONPATH``."""
    work = tmp_path_factory.mktemp(name)
    shutil.copytree(EXAMPLES / name, work / "src")
    target = work / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "--target", str(target), str(work / "src")], check=True)
    return target


def cli_with(site: Path, *argv: str) -> subprocess.CompletedProcess:
    """``weightspace ARGV`` in a fresh process that sees the plugins installed in ``site`` (one torch
    thread), with its exit code and captured output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "weightspace.cli", *argv], env=env, capture_output=True, text=True)


# A whole run (zoo, encoder, generator, prompter) small enough to train in seconds on a CPU; shared by
# the run, method and bench tests (``from .conftest import TINY_RUN``).
TINY_RUN = """
system = "lotka-volterra"
architecture = "mlp-node"
seed = 1

[system_settings]
# 6 environments: 2 seen, 2 for validation, 2 for test
n_b = 2
n_d = 3
n_seen = 2
n_train = 3
n_test = 1
n_frames = 11

[architecture_config]
hidden_width = 8

[zoo]
size = 3
base_steps = 20
expert_steps = 10
eval_every = 5
unroll = 2
max_loss = 100.0

[encoder]
width = 16
latent_dim = 4
heads = 2
depth = 1

[encoder_training]
steps = 20

[generator]
hidden = 16
depth = 1
heads = 2
sample_steps = 5

[prompter]
dim = 8
hidden = 8

[generator_training]
steps = 20
batch_size = 8
max_frames = 4
"""


@pytest.fixture
def toy_spec() -> GraphSpec:
    """A two-layer net with a complex weight and a skip merged into the hidden nodes."""
    params = {
        "a.weight": torch.zeros(4, 3),
        "a.bias": torch.zeros(4),
        "a.skip": torch.zeros(4, 3),
        "b.weight": torch.zeros(2, 4, 2, dtype=torch.complex64),
        "b.bias": torch.zeros(2),
    }
    b = LayoutBuilder()
    b.group("a", (Member("a.weight"), Member("a.bias"), Member("a.skip")), permutation="hidden")
    b.dense("b", "b", permutation=None, inputs="hidden")
    return GraphSpec.from_layout("toy", {"width": 4}, params, b.build())


@pytest.fixture
def toy_params(toy_spec):
    g = torch.Generator().manual_seed(0)
    return {p.name: torch.randn(3, *p.shape, generator=g, dtype=p.torch_dtype) for p in toy_spec.params}


@pytest.fixture
def toy_graph(toy_spec, toy_params) -> WeightGraph:
    return WeightGraph.from_params(toy_spec, toy_params)
