import json
import subprocess
import sys

import pytest
import torch

from weightspace.cli import main
from weightspace.registry import default_registry
from weightspace.storage import save_tensors


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plugins_json_lists_names_by_kind(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    data = json.loads(out)
    assert code == 0
    assert list(data) == ["architectures", "systems", "encoders", "generators", "prompters", "methods"]
    assert {"fno", "uno", "wno", "mlp-node"} <= set(data["architectures"])
    assert {"lotka-volterra", "lambda-omega", "kolmogorov", "navier-stokes", "cylinder-flow"} <= set(data["systems"])
    assert all(isinstance(n, str) for names in data.values() for n in names)


def test_plugins_table_shows_sources(capsys):
    code, out, _ = run(capsys, "plugins")
    assert code == 0 and "neuralop (weightspace" in out and "mlp-node" in out


@pytest.mark.parametrize("name", ["fno", "uno", "wno", "mlp-node"])
def test_inspect_default_config(capsys, name):
    code, out, _ = run(capsys, "inspect", name, "--json", "--device", "cpu", "--seed", "1")
    report = json.loads(out)
    assert code == 0
    assert report["roundtrip_max_abs_error"] == 0.0
    assert report["permutation_max_abs_error"] < 1e-4
    assert report["n_parameters"] > 0 and report["node_groups"]
    assert all({"name", "n_nodes", "feat_dim"} <= set(g) for g in report["node_groups"])


def test_inspect_with_overrides_and_table_output(capsys):
    code, out, _ = run(
        capsys, "inspect", "fno", "--set", "hidden_channels=4", "--set", "n_modes=3,3", "--set", "n_layers=1"
    )
    assert code == 0 and "block0.spectral" in out and "roundtrip_max_abs_error" in out


def test_inspect_saved_weights(capsys, tmp_path):
    adapter = default_registry().architecture("mlp-node", {"hidden_width": 8})
    state = adapter.state_dict(adapter.build(seed=2))
    save_tensors(tmp_path / "ok.safetensors", state)
    code, out, _ = run(
        capsys,
        "inspect",
        "mlp-node",
        "--set",
        "hidden_width=8",
        "--weights",
        str(tmp_path / "ok.safetensors"),
        "--json",
    )
    assert code == 0 and json.loads(out)["roundtrip_bitwise"]
    state["layers.0.weight"] = torch.zeros(9, 2)
    save_tensors(tmp_path / "bad.safetensors", state)
    code, _, err = run(
        capsys, "inspect", "mlp-node", "--set", "hidden_width=8", "--weights", str(tmp_path / "bad.safetensors")
    )
    assert code == 2
    assert err == "error: parameter 'layers.0.weight' has shape (9, 2), expected (8, 2) for mlp-node\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inspect", "fno", "--set", "depth=3"], "unknown config key 'depth' for architecture 'fno'; valid keys:"),
        (["inspect", "fno", "--set", "hidden_channels"], "expected key=value, got 'hidden_channels'"),
        (["inspect", "nope"], "unknown architecture 'nope'; registered architectures: fno, mlp-node"),
        (["inspect", "fno", "--device", "banana"], "not a device: 'banana'"),
        (["inspect", "fno", "--weights", "/nonexistent.safetensors"], "no such file: /nonexistent.safetensors"),
    ],
)
def test_bad_input_gives_one_line_error(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_simulate_writes_data_preview_and_table(capsys, tmp_path):
    code, out, _ = run(
        capsys, "simulate", "lotka-volterra", "--out", str(tmp_path), "--seed", "4", "--set", "n_frames=11"
    )
    assert code == 0
    assert (tmp_path / "lotka-volterra-quick.h5").is_file()
    assert (tmp_path / "lotka-volterra-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "test_out" in out and "simulated on cpu in" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["simulate", "navier", "--out", "x"],
            "unknown system 'navier'; registered systems: cylinder-flow, gridded, kolmogorov",
        ),
        (["simulate", "lotka-volterra", "--profile", "huge", "--out", "x"], "unknown profile 'huge'"),
        (["simulate", "lotka-volterra", "--device", "banana", "--out", "x"], "not a device: 'banana'"),
        (
            ["simulate", "lotka-volterra", "--set", "n_b=0", "--out", "x"],
            "invalid config for system 'lotka-volterra': n_b must be positive",
        ),
    ],
)
def test_simulate_bad_input(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith(f"error: {message}")


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--json"], ["evaluate", "--help"]])
def test_listing_commands_start_without_torch(argv):
    """`--help` and `plugins` must not pay for torch, neuraloperator or matplotlib (seconds each start)."""
    code = (
        "import sys\n"
        "from weightspace.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({'torch', 'neuralop', 'matplotlib', 'scipy'} & set(sys.modules))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_plugins_lists_the_adaptation_methods(capsys):
    """Methods are a plugin kind: `plugins --json` lists the built-in ones beside the components."""
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"one-for-all", "one-per-env", "finetune-L", "nearest-zoo", "generated", "diffusion-init"} <= set(
        listed["methods"]
    )


def test_ctrl_c_is_one_line_saying_the_rerun_resumes(monkeypatch, capsys):
    """Every write is atomic and every stage resumes, so an interrupt is reported, not a traceback."""
    import weightspace.cli.plugins as plugins

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(plugins, "run", interrupted)
    code, out, err = run(capsys, "plugins")
    assert (
        code == 130
        and out == ""
        and err.splitlines() == ["error: interrupted; everything finished is kept: rerun the same command to resume"]
    )
