"""The folders a run's run.json names are data, not trusted (issue 26): a stage folder is accepted
only inside the run folder or the cache declared beside it, under its stage's name, or for the zoo
stage exactly the zoo given with `train --zoo`; anything else is one error line, never a load from
elsewhere. Runs written before the cache was declared still load."""

import json
import shutil

import pytest

from weightspace.cli import main
from weightspace.pipeline import Run

from .conftest import TINY_RUN


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """``run`` trained with ``--cache cache``; ``zoo-run`` trained with ``--zoo "my zoo"`` (a copy of
    that zoo, reusing the cached encoder and generator); ``elsewhere`` a folder outside both."""
    root = tmp_path_factory.mktemp("runs")
    config = root / "run.toml"
    config.write_text(TINY_RUN)
    assert main(["train", "--config", str(config), "--out", str(root / "run"), "--cache", str(root / "cache")]) == 0
    shutil.copytree(root / "run" / read(root / "run")["stages"]["zoo"], root / "my zoo")
    argv = ["train", "--config", str(config), "--out", str(root / "zoo-run"), "--cache", str(root / "cache")]
    assert main([*argv, "--zoo", str(root / "my zoo")]) == 0
    (root / "elsewhere" / "generator-0123456789ab").mkdir(parents=True)
    return root


def read(run):
    return json.loads((run / "run.json").read_text())


def test_a_run_with_its_cache_elsewhere_loads(root):
    meta = read(root / "run")
    assert meta["cache"] == "../cache" and all(s.startswith("../cache/") for s in meta["stages"].values())
    run = Run.load(root / "run")
    assert {s: p.resolve() for s, p in run.stages.items()} == {
        s: (root / "cache" / f"{s}-{k.split('-')[-1]}").resolve() for s, k in meta["stages"].items()
    }


def test_a_run_inside_its_cache_loads(root):
    """The bench's layout: the run an evaluation loads lives in the cache, beside the stages."""
    inner = root / "cache" / "run-inner"
    inner.mkdir()
    meta = read(root / "run")
    stages = {s: v.replace("../cache/", "../") for s, v in meta["stages"].items()}
    (inner / "run.json").write_text(json.dumps({**meta, "stages": stages, "cache": ".."}))
    assert Run.load(inner).stages["zoo"].resolve() == (root / "run" / meta["stages"]["zoo"]).resolve()


def test_a_run_with_a_given_zoo_loads(root):
    meta = read(root / "zoo-run")
    assert meta["zoo"] == meta["stages"]["zoo"] == "../my zoo"
    assert Run.load(root / "zoo-run").stages["zoo"].resolve() == (root / "my zoo").resolve()


def test_an_old_run_json_without_the_cache_still_loads(root):
    old = root / "old-run"
    old.mkdir()
    meta = read(root / "run")
    del meta["cache"]
    (old / "run.json").write_text(json.dumps(meta))
    assert Run.load(old).stages["encoder"].resolve() == (root / "run" / meta["stages"]["encoder"]).resolve()


def _stage(name, stage, value):
    def change(meta, root):
        meta["stages"][stage] = value(meta, root) if callable(value) else value
        return meta

    return name, "run", change, f"stage '{stage}'"


def _old_style(meta, root):
    """A file written before the cache was declared, its zoo stage outside the encoder's folder."""
    return {**{k: v for k, v in meta.items() if k != "cache"}, "stages": {**meta["stages"], "zoo": "../.."}}


TAMPERED = [
    _stage("parent", "encoder", "../../elsewhere"),
    _stage("absolute", "encoder", lambda m, root: str((root / "run" / m["stages"]["encoder"]).resolve())),
    _stage("wrong-stage", "encoder", lambda m, root: m["stages"]["generator"]),
    _stage("outside-named", "generator", "../elsewhere/generator-0123456789ab"),
    _stage("dot-dot-name", "zoo", lambda m, root: m["stages"]["zoo"] + "/.."),
    ("old-style-parent", "run", _old_style, "stage 'zoo'"),
    ("cache-absolute", "run", lambda m, root: {**m, "cache": "/"}, "'cache'"),
    ("undeclared-zoo", "zoo-run", lambda m, root: {k: v for k, v in m.items() if k != "zoo"}, "stage 'zoo'"),
    ("other-zoo", "zoo-run", lambda m, root: {**m, "stages": {**m["stages"], "zoo": "../elsewhere"}}, "stage 'zoo'"),
]


@pytest.mark.parametrize("command", ["generate", "evaluate"])
@pytest.mark.parametrize("name, base, change, named", TAMPERED, ids=[t[0] for t in TAMPERED])
def test_tampered_stage_paths_are_one_error_line(root, capsys, command, name, base, change, named):
    run = root / f"tampered-{name}-{command}"  # beside the trained runs: their relative paths hold
    run.mkdir()
    meta = change(read(root / base), root)
    (run / "run.json").write_text(json.dumps(meta))
    out = root / f"out-{name}-{command}"
    argv = {
        "generate": ["generate", "--run", str(run), "--env", "0", "--out", str(out)],
        "evaluate": ["evaluate", "--run", str(run), "--out", str(out / "results.json")],
    }[command]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "run.json" in err and named in err, err
    assert not out.exists()
