"""Shift scores: the detection measures on cases with known answers, and the scores carried by every
generation (``weightspace generate``'s record) and by the ``generated`` method's evaluation rows."""

import json

import pytest
import torch

from weightspace.cli import main
from weightspace.evaluate.shift import auroc, inside_hull, residual_score, spearman

from .conftest import TINY_RUN


def test_auroc_spearman_and_ranks_on_known_cases():
    score, positive = torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([False, False, True, True])
    assert auroc(score, positive) == pytest.approx(0.75)  # 3 of the 4 positive-negative pairs ordered right
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([False, True])) == 1.0
    assert auroc(torch.tensor([1.0, 1.0]), torch.tensor([False, True])) == 0.5  # a tie counts half
    assert auroc(score, torch.ones(4, dtype=torch.bool)) is None
    assert spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([10.0, 20.0, 25.0, 100.0])) == pytest.approx(1.0)
    assert spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert spearman(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])) is None
    reference = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert residual_score(torch.tensor([0.05, 0.3, 1.0]), reference).tolist() == pytest.approx([0.0, 0.625, 1.0])


def test_inside_hull_of_a_square_and_of_an_interval():
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    points = torch.tensor([[0.5, 0.5], [0.9, 0.1], [1.5, 0.5], [-0.1, 0.2]])
    assert inside_hull(points, square).tolist() == [True, True, False, False]
    two = torch.tensor([[0.0, 0.0], [1.0, 1.0]])  # no hull of full dimension: their bounding box
    assert inside_hull(torch.tensor([[0.5, 0.2], [1.5, 0.5]]), two).tolist() == [True, False]
    line = torch.tensor([[1.0], [3.0], [2.0]])
    assert inside_hull(torch.tensor([[1.0], [2.5], [3.5]]), line).tolist() == [True, True, False]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shift")
    (folder / "tiny.toml").write_text(TINY_RUN)
    assert main(["train", "--config", str(folder / "tiny.toml"), "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_generated_rows_and_generate_carry_the_shift_scores(run, capsys):
    out = run / "results.json"
    assert main(["evaluate", "--run", str(run), "--frames", "3", "--candidates", "3", "--out", str(out)]) == 0
    for row in json.loads(out.read_text()):
        shift = row["shift"]
        assert len(shift["range"]) == len(shift["residual"]) == row["n_envs"]
        assert all(r >= 0 for r in shift["range"]) and all(0 <= r <= 1 for r in shift["residual"])
        assert shift["range_flag"] == [r > 1 for r in shift["range"]]
        assert shift["residual_flag"] == [r > 0.95 for r in shift["residual"]]
    assert main(["generate", "--run", str(run), "--env", "0", "--out", str(run / "expert")]) == 0
    record = json.loads((run / "expert" / "config.json").read_text())
    assert record["shift"]["range"] >= 0 and record["shift"]["range_flag"] == (record["shift"]["range"] > 1)


def test_the_shift_benchmark_scores_every_unseen_environment_of_a_run(run):
    import importlib.util
    from pathlib import Path

    from weightspace.pipeline.run import Run

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "shift_detection.py"
    spec = importlib.util.spec_from_file_location("shift_detection", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded = Run.load(run)
    found = module.scores_of_cell(loaded, 3, 3)
    assert set(found) == {"val_out", "test_out"}
    for split, data in found.items():
        params = loaded.zoo.dataset()[split].env_params.unique(dim=0)
        assert len(data["env_index"]) == len(data["outside"]) == len(data["range"]) == len(data["residual"]) == 2
        assert len(params) == 2 and all(0 <= r <= 1 for r in data["residual"])
    record = {"system": "s", "architecture": "a", "method": "m", "split": "val_out", "environments": 4}
    record |= {"outside": 1, "seeds": [0, 1, 2], "auroc_range": 0.5, "auroc_residual": None}
    record |= {"spearman_range": 0.25, "spearman_residual": -0.125}
    assert (
        module.markdown([record]).splitlines()[-1] == "| s / a | m | val_out | 4 (1) | 3 | 0.500 | - | 0.250 | -0.125 |"
    )
