"""Bad inputs to every command end in one line, never a traceback (issue 26).

Each case runs ``weightspace.cli.main`` in-process and asserts exit code 2, exactly one ``error: ...``
line on stderr (or argparse's usage followed by its one ``prog: error: ...`` line), no traceback,
and nothing written: the working directory (an empty tmp folder) stays empty and no ``--out`` is
created. No case trains anything: each fails validation before any work, on tiny artefacts built
once per module (a run trained for a few steps in about 4 s, expert folders, safetensors files).

Cases per category (table rows, plus hypothesis examples):

- option types (argparse ``type=``: counts, indices, seeds, finite floats) of generate, evaluate,
  distill, import gridded, inspect, simulate, zoo build, train, bench: 158
- other command-line mistakes (unknown commands, names, flags, missing required options): 16
- ``--set`` config values (non-finite floats, out-of-range sizes, wrong types, unknown keys): 61
- run config TOML (``train --config``): encodings, syntax, structure, types, values: 27, and the 7
  refused only when the run is planned write nothing either
- bench matrix TOML (``bench --dry-run``), encodings and placeholders in config paths included: 15
- bench ``results.json`` (``report``): 40
- ``run.json`` of a run folder (generate, evaluate): 16
- expert folders (``distill``): 11, plus values the distillation library refuses: 3
- safetensors files (``inspect --weights`` names/shapes/NaN/dtype, ``generate --frames``): 16
- zoo folders (``zoo info`` on damaged manifests, ``evaluate --zoo``): 6
- import gridded settings: 7
- one observed frame with several candidates (generate from --env and a file; nearest-zoo and
  finetune-L in evaluate) and an environment out of range: 5 (plus the allowed one-frame,
  one-candidate cases: generate --n 1, and evaluate, whose generated method then draws one)
- hypothesis: counts, seeds, floats, non-integer text, unknown config keys, results.json
  structures: 6 properties x 25 examples = 150

Total: 389 table cases + 150 hypothesis examples = 539, in about 15 s on one core.
"""

from __future__ import annotations

import json
import math
import shutil
import traceback
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightspace.cli import main
from weightspace.pipeline.generation import save_expert
from weightspace.registry import default_registry
from weightspace.storage import save_tensors

REPO = Path(__file__).resolve().parents[1]
LV_CONFIG = REPO / "configs" / "lotka-volterra-quick.toml"
HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    """Exit code and stderr of one in-process command (argparse exits through SystemExit); an
    exception escaping ``main`` is what a user would see as a traceback, so it is returned as one."""
    capsys.readouterr()
    trace = ""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    except Exception:
        code, trace = 1, traceback.format_exc()
    return code, capsys.readouterr().err + trace


def assert_one_error(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    lines = err.rstrip("\n").splitlines()
    assert lines, "nothing on stderr"
    if lines[0].startswith("usage:"):
        # argparse: its usage (wrapped over lines when long), then one "weightspace ...: error: ..." line
        assert lines[-1].startswith("weightspace") and ": error: " in lines[-1], err
        assert not any("error:" in line for line in lines[:-1]), err
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), err


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory, checked to stay empty (nothing written outside tmp_path)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield tmp_path
    assert not any(cwd.iterdir()), f"written into the working directory: {list(cwd.iterdir())}"


def check(capsys, workdir: Path, argv: list, out: Path | None = None) -> None:
    """``argv`` fails with one error line and writes nothing (``out``: the folder it must not create)."""
    out = out or workdir / "out"
    assert_one_error(*run_cli(capsys, argv))
    assert not out.exists(), f"{out} was written"


# ---------------------------------------------------------------- tiny artefacts, built once


TINY_RUN = {
    "system": "lotka-volterra",
    "architecture": "mlp-node",
    "profile": "quick",
    "seed": 0,
    "system_settings": {"n_b": 2, "n_d": 2, "n_seen": 2, "n_frames": 11, "n_train": 2, "n_test": 1},
    "architecture_config": {"hidden_width": 4},
    # max_loss: five base steps leave the loss far above 1, and only the artefacts' layout matters here
    "zoo": {"size": 2, "base_steps": 5, "expert_steps": 2, "eval_every": 5, "expert_batch": 2, "max_loss": 1e6},
    "encoder": {"width": 8, "latent_dim": 2, "depth": 1, "heads": 1},
    "encoder_training": {"steps": 2},
    "generator": {"hidden": 8, "depth": 1, "heads": 1, "sample_steps": 2},
    "generator_training": {"steps": 2, "batch_size": 4, "max_frames": 4},
}


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> dict[str, Path]:
    """A run trained for a few steps, an expert folder of a vector field and of a one-step operator,
    and safetensors files of the mlp-node (hidden width 8) with good and bad contents."""
    from weightspace.pipeline import RunConfig, train_run

    root = tmp_path_factory.mktemp("artefacts")
    run = train_run(RunConfig.from_dict(TINY_RUN), root / "run")
    registry = default_registry()
    node = registry.architecture("mlp-node", {"hidden_width": 8})
    state = node.state_dict(node.build(seed=0))
    save_expert(node, state, root / "expert", {})
    fno = registry.architecture("fno", {"hidden_channels": 4, "n_modes": (2, 2), "n_layers": 1})
    save_expert(fno, fno.state_dict(fno.build(seed=0)), root / "fno-expert", {})
    weights = root / "weights"
    weights.mkdir()
    first = next(iter(state))
    save_tensors(weights / "missing.safetensors", {k: v for k, v in state.items() if k != first})
    save_tensors(weights / "extra.safetensors", {**state, "extra.weight": torch.zeros(2)})
    save_tensors(weights / "shape.safetensors", {**state, first: torch.zeros(3, 3)})
    save_tensors(weights / "nan.safetensors", {**state, first: torch.full_like(state[first], math.nan)})
    save_tensors(weights / "inf.safetensors", {**state, first: torch.full_like(state[first], math.inf)})
    save_tensors(weights / "int.safetensors", {**state, first: state[first].to(torch.int32)})
    save_tensors(weights / "empty-dict.safetensors", {"unrelated": torch.zeros(1)})
    (weights / "garbage.safetensors").write_bytes(b"\x00\xff not safetensors at all")
    (weights / "empty.safetensors").write_bytes(b"")
    frames = run.zoo.dataset()["train"].trajectories[0, 0]  # [T, *state]
    save_tensors(weights / "frames-1.safetensors", {"frames": frames[:1]})
    save_tensors(weights / "frames-0.safetensors", {"frames": frames[:0]})
    save_tensors(weights / "frames-nan.safetensors", {"frames": torch.full_like(frames[:4], math.nan)})
    save_tensors(weights / "frames-shape.safetensors", {"frames": torch.zeros(4, 7)})
    save_tensors(weights / "frames-flat.safetensors", {"frames": torch.zeros(4)})
    save_tensors(weights / "frames-name.safetensors", {"observed": frames[:4]})
    return {"root": root, "run": root / "run", "zoo": run.stages["zoo"], "expert": root / "expert"} | {
        "fno-expert": root / "fno-expert",
        "weights": weights,
    }


# ---------------------------------------------------------------- option types

BAD_COUNTS = ["0", "-1", "abc", "1.5", "", "1e3", str(10**9)]
BAD_SEEDS = ["-1", str(2**63), str(2**70), "abc", "1.5"]
BAD_POSITIVE_FLOATS = ["0", "-1", "nan", "inf", "-inf", "abc"]
BAD_NON_NEGATIVE_FLOATS = ["-1", "nan", "inf", "-inf", "abc"]

COMMANDS = {
    # the least each command needs to parse, with its output (if any) at {out}
    "generate": ["generate", "--run", "{run}", "--env", "0", "--out", "{out}"],
    "evaluate": ["evaluate", "--run", "{run}", "--out", "{out}/results.json"],
    "distill": ["distill", "--expert", "{expert}", "--out", "{out}/eq.json"],
    "gridded": ["import", "gridded", "--input", "{missing}", "--vars", "u", "--out", "{out}/data.h5"],
    "inspect": ["inspect", "mlp-node"],
    "simulate": ["simulate", "lotka-volterra", "--out", "{out}"],
    "zoo": ["zoo", "build", "--system", "lotka-volterra", "--arch", "mlp-node", "--out", "{out}"],
    "train": ["train", "--config", str(LV_CONFIG), "--out", "{out}"],
    "bench": ["bench", str(REPO / "benchmarks" / "matrices" / "ci.toml"), "--out", "{out}", "--dry-run"],
}
OPTION_CASES = [
    *[
        (command, option, value)
        for command, option in [
            ("generate", "--n"),
            ("generate", "--length"),
            ("evaluate", "--frames"),
            ("evaluate", "--candidates"),
            ("evaluate", "--finetune-steps"),
            ("evaluate", "--finetune-budgets"),
            ("distill", "--degree"),
            ("distill", "--trajectories"),
            ("distill", "--steps"),
            ("gridded", "--frames"),
            ("gridded", "--stride"),
            ("gridded", "--n-seen"),
            ("zoo", "--jobs"),
            ("bench", "--jobs"),
        ]
        for value in BAD_COUNTS
    ],
    *[("generate", "--env", value) for value in ["-1", "abc", "1.5", str(10**9)]],
    *[
        (command, "--seed", value)
        for command in ("generate", "distill", "gridded", "inspect", "simulate", "zoo", "train")
        for value in BAD_SEEDS
    ],
    *[(c, o, v) for c, o in [("evaluate", "--finetune-lr"), ("distill", "--dt")] for v in BAD_POSITIVE_FLOATS],
    *[("distill", "--threshold", v) for v in BAD_NON_NEGATIVE_FLOATS],
    *[("gridded", "--max-missing", v) for v in ["nan", "inf", "-inf", "abc"]],
]


def argv_of(command: str, workdir: Path, *extra: str, run: Path | None = None) -> list[str]:
    names = {"out": workdir / "out", "run": run or workdir / "no-run", "expert": workdir / "no-expert"}
    names["missing"] = workdir / "missing.nc"
    return [part.format(**names) for part in COMMANDS[command]] + list(extra)


@pytest.mark.parametrize(("command", "option", "value"), OPTION_CASES)
def test_option_types(capsys, workdir, command, option, value):
    # "--opt=value": a value such as "-1" would otherwise read as an option
    check(capsys, workdir, argv_of(command, workdir, f"{option}={value}"))


@given(value=st.one_of(st.integers(max_value=0), st.integers(min_value=10**6 + 1)))
@HYPOTHESIS
def test_counts_out_of_range(capsys, workdir, value):
    check(capsys, workdir, argv_of("generate", workdir, f"--n={value}"))


@given(value=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63)))
@HYPOTHESIS
def test_seeds_out_of_range(capsys, workdir, value):
    check(capsys, workdir, argv_of("inspect", workdir, f"--seed={value}"))


@given(
    value=st.one_of(
        st.floats(max_value=0.0, allow_nan=False),
        st.sampled_from([math.nan, math.inf, -math.inf]),
    )
)
@HYPOTHESIS
def test_positive_floats_out_of_range(capsys, workdir, value):
    check(capsys, workdir, argv_of("distill", workdir, f"--dt={value!r}"))


def _not_an_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


@given(text=st.text(min_size=1).filter(_not_an_integer))
@HYPOTHESIS
def test_count_options_that_are_not_integers(capsys, workdir, text):
    check(capsys, workdir, argv_of("evaluate", workdir, f"--candidates={text}"))


# ---------------------------------------------------------------- other command-line mistakes

CLI_CASES = [
    [],
    ["nope"],
    ["plugins", "--nope"],
    ["inspect"],
    ["inspect", "no-such-architecture"],
    ["inspect", "mlp-node", "--device", "nope"],
    ["inspect", "mlp-node", "--weights"],
    ["simulate", "no-such-system", "--out", "{out}"],
    ["simulate", "lotka-volterra", "--profile", "nope", "--out", "{out}"],
    ["zoo"],
    ["zoo", "build", "--system", "lotka-volterra", "--arch", "nope", "--out", "{out}"],
    ["zoo", "build", "--system", "lotka-volterra", "--arch", "mlp-node", "--out", "{out}", "--jobs", "2"],
    ["zoo", "info", "{tmp}/no-zoo"],
    ["train", "--config", "{tmp}/missing.toml", "--out", "{out}"],
    ["evaluate", "--out", "{out}/r.json"],
    ["generate", "--run", "{tmp}/no-run", "--out", "{out}"],
]


@pytest.mark.parametrize("argv", CLI_CASES, ids=lambda a: " ".join(a) or "(none)")
def test_command_line_mistakes(capsys, workdir, argv):
    check(capsys, workdir, [a.format(out=workdir / "out", tmp=workdir) for a in argv])


# ---------------------------------------------------------------- --set config values

SET_CASES = [
    *[
        f"zoo.{key}={value}"
        for key in ("lr", "expert_lr", "perturb_scale", "grad_clip", "max_loss")
        for value in ("nan", "inf", "-inf", "NaN", "abc")
    ],
    *[f"zoo.size={value}" for value in ("0", "-1", "1e9", str(10**9), "1.5", "nan", "abc", "")],
    *[
        f"zoo.{key}={value}"
        for key in ("base_steps", "expert_steps", "batch_size", "expert_batch")
        for value in ("0", str(10**8), "abc")
    ],
    "zoo.random_init=maybe",
    "zoo.nope=1",
    "nope.size=1",
    "size=1",
    "zoo.size",
    "=1",
    "system.n_frames=0",
    "system.dt=nan",
    "system.dt=inf",
    "system.n_seen=99",  # of 100 environments, 99 seen and 1 for validation leave no test environment
    "system.val_fraction=0",
    "system.val_fraction=1",
    "system.split_seed=-1",
    "arch.hidden_width=0",
    "arch.hidden_width=nan",
    "arch.nope=1",
]


@pytest.mark.parametrize("assignment", SET_CASES)
def test_zoo_build_set_values(capsys, workdir, assignment):
    check(capsys, workdir, argv_of("zoo", workdir, "--set", assignment))


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "mlp-node", "--set", "hidden_width=inf"],
        ["inspect", "mlp-node", "--set", "hidden_width=0"],
        ["simulate", "lotka-volterra", "--out", "{out}", "--set", "dt=nan"],
        ["simulate", "lotka-volterra", "--out", "{out}", "--set", "n_frames=-3"],
        ["simulate", "lotka-volterra", "--out", "{out}", "--set", "n_seen=99"],  # no test environment left
    ],
)
def test_set_values_of_other_commands(capsys, workdir, argv):
    check(capsys, workdir, [a.format(out=workdir / "out") for a in argv])


@given(key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
@HYPOTHESIS
def test_unknown_zoo_keys(capsys, workdir, key):
    from weightspace.zoo.zoo import ZooSettings

    if key in ZooSettings.__dataclass_fields__:
        return
    check(capsys, workdir, argv_of("zoo", workdir, "--set", f"zoo.{key}=1"))


# ---------------------------------------------------------------- run config TOML

GOOD_TOML = 'system = "lotka-volterra"\narchitecture = "mlp-node"\n'
TOML_CASES = {
    "latin-1": ('system = "lotka-volterra"\narchitecture = "mlp-node"\n# caf\xe9\n').encode("latin-1"),
    "binary": b"\x00\xff\xfe\x00",
    "utf-16": GOOD_TOML.encode("utf-16"),
    "syntax": b"system = \n",
    "empty": b"",
    "no-architecture": b'system = "lotka-volterra"\n',
    "system-table": b'architecture = "mlp-node"\n[system]\nn_seen = 3\n',
    "system-int": GOOD_TOML.replace('"lotka-volterra"', "3").encode(),
    "unknown-system": GOOD_TOML.replace("lotka-volterra", "nope").encode(),
    "unknown-architecture": GOOD_TOML.replace("mlp-node", "nope").encode(),
    "seed-negative": (GOOD_TOML + "seed = -1\n").encode(),
    "seed-float": (GOOD_TOML + "seed = 1.5\n").encode(),
    "seed-string": (GOOD_TOML + 'seed = "x"\n').encode(),
    "profile-int": (GOOD_TOML + "profile = 3\n").encode(),
    "section-string": (GOOD_TOML + 'zoo = "big"\n').encode(),
    "section-list": (GOOD_TOML + "encoder = [1, 2]\n").encode(),
    "section-int": (GOOD_TOML + "generator_training = 5\n").encode(),
    "unknown-section": (GOOD_TOML + "[zooo]\nsize = 2\n").encode(),
    "extends-int": (GOOD_TOML + "extends = 5\n").encode(),
    "extends-missing": (GOOD_TOML + 'extends = "nowhere.toml"\n').encode(),
    "extends-itself": (GOOD_TOML + 'extends = "config.toml"\n').encode(),
    "encoder-name-int": (GOOD_TOML + "[encoder]\nname = 3\n").encode(),
    "encoder-unknown": (GOOD_TOML + '[encoder]\nname = "nope"\n').encode(),
    "zoo-lr-nan": (GOOD_TOML + "[zoo]\nlr = nan\n").encode(),
    "zoo-lr-inf": (GOOD_TOML + "[zoo]\nlr = inf\n").encode(),
    "zoo-size-huge": (GOOD_TOML + "[zoo]\nsize = 1e9\n").encode(),
    "generator-steps-0": (GOOD_TOML + "[generator_training]\nsteps = 0\n").encode(),
}


LATE_TOML = ("unknown-system", "unknown-architecture", "encoder-unknown", "zoo-lr-nan", "zoo-lr-inf")
LATE_TOML += ("zoo-size-huge", "generator-steps-0")
"""Refused when the run is planned, which `train` does after claiming --out."""


@pytest.mark.parametrize("name", list(TOML_CASES))
def test_run_config_toml(capsys, workdir, name):
    path = workdir / "config.toml"
    path.write_bytes(TOML_CASES[name])
    code, err = run_cli(capsys, ["train", "--config", path, "--out", workdir / "out"])
    assert_one_error(code, err)
    if name not in LATE_TOML:
        assert not (workdir / "out").exists()


@pytest.mark.parametrize("name", LATE_TOML)
def test_run_config_refused_before_writing(capsys, workdir, name):
    path = workdir / "config.toml"
    path.write_bytes(TOML_CASES[name])
    check(capsys, workdir, ["train", "--config", path, "--out", workdir / "out"])


# ---------------------------------------------------------------- bench matrix TOML

MATRIX = f'seeds = [0]\n[systems.lv]\nconfig = "{LV_CONFIG}"\n[methods.dynadiff]\n'
MATRIX_CASES = {
    "binary": b"\xff\xfe\x00",
    "syntax": b"seeds = [\n",
    "empty": b"",
    "unknown-key": (MATRIX + "nope = 1\n").encode(),
    "systems-string": b'systems = "lv"\n[methods.dynadiff]\n',
    "system-no-config": b"[systems.lv]\n[methods.dynadiff]\n",
    "no-methods": f'[systems.lv]\nconfig = "{LV_CONFIG}"\n'.encode(),
    "seeds-string": MATRIX.replace("seeds = [0]", 'seeds = "0"').encode(),
    "seeds-none": MATRIX.replace("seeds = [0]", "seeds = []").encode(),
    "candidates-0": (f"candidates = 0\n{MATRIX}").encode(),
    "frames-negative": (f"observed_frames = -1\n{MATRIX}").encode(),
    "unknown-baseline": (f'baselines = ["nope"]\n{MATRIX}').encode(),
    "unknown-sweep": (MATRIX + "[sweeps]\nnope = [1]\n").encode(),
    "placeholder-typo": (MATRIX + '[methods.flat]\nconfig = "{sistem}.toml"\n').encode(),
    "placeholder-positional": (MATRIX + '[methods.flat]\nconfig = "{}.toml"\n').encode(),
    "placeholder-unbalanced": (MATRIX + '[methods.flat]\nconfig = "{system.toml"\n').encode(),
}


@pytest.mark.parametrize("name", list(MATRIX_CASES))
def test_matrix_toml(capsys, workdir, name):
    path = workdir / "matrix.toml"
    path.write_bytes(MATRIX_CASES[name])
    check(capsys, workdir, ["bench", path, "--out", workdir / "out", "--dry-run"])


# ---------------------------------------------------------------- results.json (report)

GOOD_RESULTS = {
    "matrix": "m.toml",
    "main_method": "dynadiff",
    "written": "2026-01-01 00:00:00",
    "cells": 0,
    "failed": [],
    "rows": [],
    "summary": [],
    "timings": [],
}
GOOD_SUMMARY_ROW = {
    **{"system": "lv", "architecture": "mlp", "method": "dynadiff", "group": "method", "split": "test_out"},
    **dict.fromkeys(("sweep", "sweep_value", "ratio_to_reference", "reference_method"), None),
    **{"n_seeds": 1, "rmse_mean": 0.1, "rmse_seed_std": 0.0, "reference": False, "fine_tunes_observed": False},
    **{"rmse_per_step": [0.1], "per_env": [{"env_index": 0, "rmse": 0.1, "env_params": {"a": 1.0, "b": 2.0}}]},
}
"""A summary row of the main method, every field the report reads drawn; each case breaks one nested field."""
RESULTS_CASES: dict[str, object] = {
    "empty-object": {},
    "list": [],
    "string": "results",
    "null": None,
    "number": 3,
    **{f"missing-{key}": {k: v for k, v in GOOD_RESULTS.items() if k != key} for key in GOOD_RESULTS},
    **{f"wrong-{key}": {**GOOD_RESULTS, key: True} for key in GOOD_RESULTS},
    "summary-row-int": {**GOOD_RESULTS, "summary": [1]},
    "summary-row-empty": {**GOOD_RESULTS, "summary": [{}]},
    "failed-entry-int": {**GOOD_RESULTS, "failed": [1]},
    "timings-entry-empty": {**GOOD_RESULTS, "timings": [{}]},
    **{
        f"summary-{name}": {**GOOD_RESULTS, "summary": [{**GOOD_SUMMARY_ROW, **change}]}
        for name, change in {
            "per-step-strings": {"rmse_per_step": ["0.1"]},
            "per-env-int": {"per_env": [1]},
            "per-env-no-rmse": {"per_env": [{"env_params": {"a": 1.0, "b": 2.0}}]},
            "env-params-list": {"per_env": [{"rmse": 0.1, "env_params": [1.0]}]},
            "env-params-differ": {
                "per_env": [
                    {"rmse": 0.1, "env_params": {"a": 1.0, "b": 2.0}},
                    {"rmse": 0.1, "env_params": {"a": 1.0, "c": 2.0}},
                ]
            },
            "budget-curve-object": {"budget_curve": {"steps": 10}},
            "budget-point-no-steps": {"budget_curve": [{"rmse": 0.1, "seconds_per_env": 1.0}]},
            "budget-point-string-rmse": {"budget_curve": [{"steps": 10, "rmse": "low", "seconds_per_env": 1.0}]},
            "system-path": {"system": "../lv"},
            "sweep-without-value": {"sweep": "zoo_size"},
            "nn-ratio-string": {"nn_ratio": "0.5"},
            "fine-tuning-without-seconds": {"fine_tunes_observed": True, "seconds_per_env": None},
        }.items()
    },
}


@pytest.mark.parametrize("name", list(RESULTS_CASES))
def test_results_json(capsys, workdir, name):
    bench = workdir / "bench"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps(RESULTS_CASES[name]))
    check(capsys, workdir, ["report", bench], out=bench / "report.md")


@pytest.mark.parametrize("content", [b"\xff\xfe{}", b"{", b""], ids=["not-utf8", "truncated", "empty"])
def test_results_json_bytes(capsys, workdir, content):
    bench = workdir / "bench"
    bench.mkdir()
    (bench / "results.json").write_bytes(content)
    check(capsys, workdir, ["report", bench], out=bench / "report.md")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(list(GOOD_RESULTS)), inner, max_size=8),
    max_leaves=12,
)


@given(value=json_values)
@HYPOTHESIS
def test_results_json_structures(capsys, workdir, value):
    bench = workdir / "bench"
    bench.mkdir(exist_ok=True)
    (bench / "results.json").write_text(json.dumps(value))
    check(capsys, workdir, ["report", bench], out=bench / "report.md")


# ---------------------------------------------------------------- run.json

RUN_JSON_CASES: dict[str, bytes] = {
    "not-utf8": b"\xff\xfe{}",
    "truncated": b'{"stages": ',
    "list": b"[]",
    "empty-object": b"{}",
    "no-stages": json.dumps({"config": {}}).encode(),
    "stages-list": json.dumps({"config": {}, "stages": ["zoo"]}).encode(),
    "stage-missing": json.dumps({"config": {}, "stages": {"zoo": "z", "encoder": "e"}}).encode(),
    "stage-int": json.dumps({"config": {}, "stages": {"zoo": 1, "encoder": "e", "generator": "g"}}).encode(),
}


@pytest.mark.parametrize("command", ["generate", "evaluate"])
@pytest.mark.parametrize("name", list(RUN_JSON_CASES))
def test_run_json(capsys, workdir, name, command):
    run = workdir / "run"
    run.mkdir()
    (run / "run.json").write_bytes(RUN_JSON_CASES[name])
    check(capsys, workdir, argv_of(command, workdir, run=run))


# ---------------------------------------------------------------- expert folders (distill)

EXPERT_CASES: dict[str, bytes | None] = {
    "no-config": None,
    "not-utf8": b"\xff{}",
    "truncated": b'{"architecture":',
    "list": b"[]",
    "no-architecture": json.dumps({"config": {}}).encode(),
    "architecture-int": json.dumps({"architecture": 3, "config": {}}).encode(),
    "config-list": json.dumps({"architecture": "mlp-node", "config": []}).encode(),
    "unknown-architecture": json.dumps({"architecture": "nope", "config": {}}).encode(),
    "bad-config-key": json.dumps({"architecture": "mlp-node", "config": {"nope": 1}}).encode(),
    "system-without-profile": json.dumps({"architecture": "mlp-node", "config": {}, "system": "x"}).encode(),
    "no-weights": json.dumps({"architecture": "mlp-node", "config": {"hidden_width": 8}}).encode(),
}


@pytest.mark.parametrize("name", list(EXPERT_CASES))
def test_expert_folder(capsys, workdir, name):
    expert = workdir / "expert"
    expert.mkdir()
    if EXPERT_CASES[name] is not None:
        (expert / "config.json").write_bytes(EXPERT_CASES[name])
    check(capsys, workdir, ["distill", "--expert", expert, "--out", workdir / "out" / "eq.json"])


@pytest.mark.parametrize(
    ("expert", "extra"),
    [("fno-expert", []), ("expert", ["--degree", "7"]), ("expert", ["--degree", "1000"])],
)
def test_distill_values_the_library_refuses(capsys, workdir, artefacts, expert, extra):
    check(capsys, workdir, ["distill", "--expert", artefacts[expert], "--out", workdir / "out" / "eq.json", *extra])


# ---------------------------------------------------------------- safetensors

WEIGHT_FILES = ["missing", "extra", "shape", "nan", "inf", "int", "empty-dict", "garbage", "empty", "absent"]


@pytest.mark.parametrize("name", WEIGHT_FILES)
def test_inspect_weights(capsys, workdir, artefacts, name):
    path = artefacts["weights"] / f"{name}.safetensors"
    check(capsys, workdir, ["inspect", "mlp-node", "--set", "hidden_width=8", "--weights", path])


@pytest.mark.parametrize("name", ["frames-0", "frames-nan", "frames-shape", "frames-flat", "frames-name", "garbage"])
def test_generate_frames_file(capsys, workdir, artefacts, name):
    path = artefacts["weights"] / f"{name}.safetensors"
    check(capsys, workdir, ["generate", "--run", artefacts["run"], "--frames", path, "--out", workdir / "out"])


# ---------------------------------------------------------------- zoo folders


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("not-utf8", b"\xff\xfe{}"),
        ("truncated", b'{"system":'),
        ("list", b"[]"),
        ("empty-object", b"{}"),
        ("base-null", None),
    ],
)
def test_damaged_zoo_manifest(capsys, workdir, artefacts, name, content):
    zoo = workdir / "zoo"
    shutil.copytree(artefacts["zoo"], zoo)
    manifest = zoo / "manifest.json"
    if content is None:
        content = json.dumps({**json.loads(manifest.read_text()), "base": None}).encode()
    manifest.write_bytes(content)
    assert_one_error(*run_cli(capsys, ["zoo", "info", zoo]))


def test_evaluate_zoo_with_unknown_method(capsys, workdir, artefacts):
    check(capsys, workdir, ["evaluate", "--zoo", artefacts["zoo"], "--method", "nope", "--out", workdir / "out/r.json"])


# ---------------------------------------------------------------- import gridded settings

GRIDDED_CASES = [
    ["--tile", "3x3"],
    ["--tile", "abc"],
    ["--vars", ","],
    ["--env-by", "nope"],
    ["--frames", "1"],
    ["--max-missing", "1.5"],
    ["--max-missing", "-0.1"],
]


@pytest.mark.parametrize("extra", GRIDDED_CASES, ids=lambda e: " ".join(e))
def test_import_gridded_settings(capsys, workdir, extra):
    check(capsys, workdir, argv_of("gridded", workdir, *extra))


# ---------------------------------------------------------------- one observed frame


def test_generate_one_frame_several_candidates(capsys, workdir, artefacts):
    argv = ["generate", "--run", artefacts["run"], "--env", "0", "--length", "1", "--n", "4", "--out", workdir / "out"]
    code, err = run_cli(capsys, argv)
    assert_one_error(code, err)
    assert "one observed frame" in err and "n_candidates=1" in err
    assert not (workdir / "out").exists()


def test_generate_one_frame_from_a_file(capsys, workdir, artefacts):
    frames = artefacts["weights"] / "frames-1.safetensors"
    argv = ["generate", "--run", artefacts["run"], "--frames", frames, "--n", "2", "--out", workdir / "out"]
    check(capsys, workdir, argv)


@pytest.mark.parametrize("method", ["nearest-zoo", "finetune-L"])
def test_evaluate_one_frame(capsys, workdir, artefacts, method):
    argv = ["evaluate", "--run", artefacts["run"], "--frames", "1", "--out", workdir / "out" / "r.json"]
    check(capsys, workdir, [*argv, "--method", method])


def test_evaluating_a_run_on_one_frame_draws_one_candidate(capsys, workdir, artefacts):
    """With one observed frame there is nothing to choose candidates by: the generated method draws
    one and its rows say so, where an explicit `generate --n 2 --length 1` is refused above."""
    out = workdir / "out" / "r.json"
    code, _ = run_cli(
        capsys, ["evaluate", "--run", artefacts["run"], "--frames", "1", "--candidates", "4", "--out", out]
    )
    assert code == 0
    assert [(r["observed_frames"], r["candidates"]) for r in json.loads(out.read_text())] == [(1, 1)] * 3


def test_generate_env_out_of_range(capsys, workdir, artefacts):
    check(capsys, workdir, ["generate", "--run", artefacts["run"], "--env", "99", "--out", workdir / "out"])


def test_one_frame_with_one_candidate_is_allowed(capsys, workdir, artefacts):
    """The rule refuses a choice it cannot make, not one frame itself."""
    argv = ["generate", "--run", artefacts["run"], "--env", "0", "--length", "1", "--n", "1", "--out", workdir / "out"]
    code, err = run_cli(capsys, argv)
    assert code == 0, err
    assert (workdir / "out" / "expert.safetensors").is_file()
    shutil.rmtree(workdir / "out")
