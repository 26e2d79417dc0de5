"""The zoo builder and format: contents, resume after interruption, checksums, dropped experts, CLI."""

import json

import pytest
import torch

import weightspace.zoo.zoo as zoo_module
from weightspace.cli import main
from weightspace.errors import ConfigError, StorageError
from weightspace.evaluate.evaluation import evaluate
from weightspace.method import EvaluationOptions
from weightspace.registry import default_registry
from weightspace.zoo import Zoo, ZooProgress, build_zoo, plan_zoo
from weightspace_methods.baselines import nearest_zoo

SYSTEM = {"n_b": 2, "n_d": 2, "n_seen": 2, "n_train": 3, "n_test": 1, "n_frames": 11}
ZOO = {"size": 2, "base_steps": 20, "expert_steps": 10, "eval_every": 5, "unroll": 2, "expert_batch": 2}
ZOO_CLI = [f"--set=system.{k}={v}" for k, v in SYSTEM.items()] + [f"--set=zoo.{k}={v}" for k, v in ZOO.items()]


def tiny_plan(**zoo):
    return plan_zoo(
        default_registry(),
        "lotka-volterra",
        "mlp-node",
        "quick",
        seed=3,
        system_overrides=SYSTEM,
        architecture_overrides={"hidden_width": 8},
        zoo_overrides={**ZOO, "max_loss": 100.0, **zoo},
    )


class Interrupt(Exception):
    pass


class StopAfterFirstEnvironment(ZooProgress):
    def environment_done(self, env_index):
        raise Interrupt


class Recorder(ZooProgress):
    def __init__(self):
        self.stages = []

    def stage(self, name, total):
        self.stages.append((name, total))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    return build_zoo(tiny_plan(), out)


def test_zoo_contents(built):
    m = built.manifest
    assert m["format"] == "weightspace-zoo" and m["complete"]
    assert m["system"] == "lotka-volterra" and m["architecture"] == "mlp-node"
    assert m["architecture_config"]["state_dim"] == 2 and m["architecture_config"]["hidden_width"] == 8
    assert len(m["environments"]) == 2 and built.n_experts == 4
    seeds = [e["seed"] for r in m["environments"] for e in r["experts"]]
    assert len(set(seeds)) == 4
    for r in m["environments"]:
        assert set(r["env_params"]) == {"b", "d"} and len(r["sha256"]) == 64
        for e in r["experts"]:
            assert e["perturbed_layer"] in {g.name for g in built.spec.groups}
            assert e["val_loss"] is not None and e["val_rmse"] is not None and e["train_loss"] is not None
    params, envs = built.experts()
    assert params["layers.0.weight"].shape == (4, 8, 2) and envs.tolist() == [
        r["env_index"] for r in m["environments"] for _ in range(2)
    ]
    assert built.base()["layers.0.weight"].shape == (1, 8, 2)
    # experts are fine-tuned from the base: close to it but not equal
    assert not torch.equal(params["layers.0.weight"][0], built.base()["layers.0.weight"][0])


def test_resume_after_interruption_loses_nothing(tmp_path, built):
    with pytest.raises(Interrupt):
        build_zoo(tiny_plan(), tmp_path, progress=StopAfterFirstEnvironment())
    partial = json.loads((tmp_path / "manifest.json").read_text())
    assert not partial["complete"] and len(partial["environments"]) == 1
    first = tmp_path / partial["environments"][0]["file"]
    stamp = first.stat().st_mtime_ns
    with pytest.raises(StorageError, match="incomplete"):
        Zoo.load(tmp_path)

    recorder = Recorder()
    resumed = build_zoo(tiny_plan(), tmp_path, progress=recorder)
    assert first.stat().st_mtime_ns == stamp  # the finished environment was not retrained
    assert [s for s in recorder.stages if "base" in s[0]] == []  # nor the base
    assert recorder.stages[-1][0].startswith("2 experts x 1 environments")
    a, b = resumed.experts()[0], built.experts()[0]
    for k in a:
        assert torch.equal(a[k], b[k])  # the same zoo as an uninterrupted build
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in built.path.iterdir())


def test_tampered_shard_is_detected(tmp_path, built):
    import shutil

    copy = tmp_path / "zoo"
    shutil.copytree(built.path, copy)
    shard = copy / built.manifest["environments"][1]["file"]
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="sha256"):
        Zoo.load(copy)


def test_resuming_with_other_settings_is_refused(tmp_path, built):
    import shutil

    shutil.copytree(built.path, tmp_path / "zoo")
    with pytest.raises(StorageError, match="other settings"):
        build_zoo(tiny_plan(expert_steps=11), tmp_path / "zoo")


def test_diverged_expert_is_dropped_and_recorded(tmp_path, monkeypatch):
    original = zoo_module.perturb_layer
    calls = []

    def explode_first(adapter, base, seed, scale):
        params, layer = original(adapter, base, seed, scale)
        calls.append(seed)
        if len(calls) == 1:
            params = {k: v * 1e4 for k, v in params.items()}
        return params, layer

    monkeypatch.setattr(zoo_module, "perturb_layer", explode_first)
    zoo = build_zoo(tiny_plan(max_loss=5.0), tmp_path)
    first = zoo.manifest["environments"][0]
    assert len(first["experts"]) == 1 and len(first["dropped"]) == 1
    assert first["dropped"][0]["seed"] == calls[0]
    assert "non-finite" in first["dropped"][0]["reason"] or "above 5" in first["dropped"][0]["reason"]
    assert zoo.experts()[0]["layers.0.weight"].shape[0] == 3
    assert torch.isfinite(zoo.experts()[0]["layers.0.weight"]).all()


def test_random_init_zoo(tmp_path):
    zoo = build_zoo(tiny_plan(random_init=True, base_steps=10), tmp_path)
    assert all(e["perturbed_layer"] is None for r in zoo.manifest["environments"] for e in r["experts"])


def test_evaluate_rows(built):
    methods = ("one-for-all", "one-per-env", "finetune-L", "nearest-zoo")
    rows = evaluate(built, methods, options=EvaluationOptions(observed_frames=3, finetune_steps=5))
    assert [(r["method"], r["split"]) for r in rows] == [
        (m, s) for s in ("test_in", "val_out", "test_out") for m in methods
    ]
    for r in rows:
        assert {"system", "architecture", "rmse_mean", "rmse_std", "ssim_mean", "n_envs", "n_traj"} <= set(r)
        assert r["rmse_mean"] > 0 and r["ssim_mean"] is None
        assert len(r["rmse_per_step"]) == SYSTEM["n_frames"] - 1
        assert len(r["per_env"]) == r["n_envs"]
    assert rows[0]["n_envs"] == 2 and rows[0]["n_traj"] == 2 and rows[4]["n_envs"] == rows[8]["n_envs"] == 1
    assert rows[3]["observed_frames"] == 3 and "finetune_steps" not in rows[3]


def test_nearest_zoo_retrieves_the_expert_that_best_reproduces_the_frames(built):
    experts, _ = built.experts()
    n = len(experts["layers.0.weight"])
    # frames produced by zoo expert 1 itself: retrieval must find it (residual zero)
    start = built.dataset()["test_out"].trajectories[:1, 0].float()
    with torch.no_grad():
        frames = built.adapter.rollout({k: v[1:2] for k, v in experts.items()}, start[:, None], 3, built.dt)[:, 0]
    chosen = nearest_zoo(built, frames).params
    assert all(torch.equal(chosen[k][0], experts[k][1]) for k in experts) and n > 1
    with pytest.raises(ConfigError, match="at least 2 observed frames"):
        nearest_zoo(built, frames[:, :1])


def test_cli_zoo_build_info_evaluate(tmp_path, capsys):
    out = tmp_path / "zoo"
    argv = ["zoo", "build", "--system", "lotka-volterra", "--arch", "mlp-node", "--out", str(out), "--size", "2"]
    assert main([*argv, *ZOO_CLI, "--set", "arch.hidden_width=8", "--set", "zoo.max_loss=100"]) == 0
    assert "zoo: lotka-volterra" in capsys.readouterr().out
    assert main(["zoo", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["complete"]
    results = tmp_path / "results.json"
    assert main(["evaluate", "--zoo", str(out), "--method", "one-for-all", "--out", str(results)]) == 0
    rows = json.loads(results.read_text())
    assert {r["split"] for r in rows} == {"test_in", "val_out", "test_out"} and results.with_suffix(
        ".png"
    ).stat().st_size > 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    build = ["zoo", "build", "--system", "lotka-volterra", "--out", str(tmp_path)]
    assert main([*build, "--arch", "nope"]) == 2
    assert "unknown architecture 'nope'" in capsys.readouterr().err
    assert main([*build, "--arch", "mlp-node", "--set", "size=3"]) == 2
    assert "prefix the key" in capsys.readouterr().err
    assert main(["zoo", "info", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert main([*build, "--arch", "mlp-node", "--set", "arch.state_dim=3"]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert main([*build, "--arch", "mlp-node", "--jobs", "2"]) == 2
    assert "add --executor ray" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_lotka_volterra_zoo_end_to_end(tmp_path):
    """The quick profile's training on a 3x3 grid, with shorter budgets (which also cap One-per-Env's
    runs): One-per-Env beats One-for-All on every split, by half on seen and test environments."""
    plan = plan_zoo(
        default_registry(),
        "lotka-volterra",
        "mlp-node",
        "quick",
        seed=0,
        system_overrides={"n_b": 3, "n_d": 3, "n_seen": 4},
        zoo_overrides={"size": 2, "base_steps": 300, "expert_steps": 100},
    )
    zoo = build_zoo(plan, tmp_path)
    assert zoo.n_experts == 8
    rows = {(r["method"], r["split"]): r for r in evaluate(zoo, ["one-for-all", "one-per-env"])}
    for split, factor in (("test_in", 0.5), ("val_out", 1.0), ("test_out", 0.5)):
        # the two validation environments: capped at these budgets, One-per-Env is 0.67x One-for-All there
        assert rows["one-per-env", split]["rmse_mean"] < factor * rows["one-for-all", split]["rmse_mean"]
    experts = [e["val_rmse"] for r in zoo.manifest["environments"] for e in r["experts"]]
    assert max(experts) < zoo.manifest["base"]["val_rmse"]  # experts fit their environment better than the base


@pytest.mark.parametrize(
    "options, message",
    [
        (["--frames", "1"], "at least 2 observed frames"),
        (["--frames", "500"], "500 observed frames requested"),
        (["--finetune-steps", "0"], "--finetune-steps: must be an integer in [1, "),
    ],
)
def test_cli_evaluate_rejects_bad_finetune_options(built, tmp_path, capsys, options, message):
    argv = ["evaluate", "--zoo", str(built.path), "--method", "finetune-L", "--out", str(tmp_path / "r.json")]
    try:
        code = main([*argv, *options])
    except SystemExit as exc:  # refused by argparse, with its usage line
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_ray_builds_the_same_zoo_as_a_local_build(tmp_path, capsys):
    """Chunks of experts as tasks on a local 2-worker Ray instance, through the CLI."""
    pytest.importorskip("ray")
    args = ["zoo", "build", "--system", "lotka-volterra", "--arch", "mlp-node", "--seed", "3", "--device", "cpu"]
    args += [*ZOO_CLI, "--set=arch.hidden_width=8", "--set=zoo.max_loss=100", "--set=zoo.expert_batch=1"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray", "--jobs", "2"]) == 0
    local, ray = Zoo.load(tmp_path / "local"), Zoo.load(tmp_path / "ray")
    assert local.manifest["environments"] == ray.manifest["environments"]  # records and shard checksums
    (local_params, local_envs), (ray_params, ray_envs) = local.experts(), ray.experts()
    assert torch.equal(local_envs, ray_envs)
    assert all(torch.equal(local_params[k], ray_params[k]) for k in local_params)


def _refuse(item, **shared):
    raise ConfigError(f"item {item} refused")


def test_a_user_error_in_a_ray_task_comes_back_as_itself():
    pytest.importorskip("ray")
    from weightspace.parallel import RayPool

    pool = RayPool(1)
    try:
        with pytest.raises(ConfigError, match=r"^item 3 refused$"):
            list(pool.map(_refuse, {}, [3]))
    finally:
        pool.close()
