"""The domain-adaptive model zoo (DynaDiff, section 3.2): its settings, builder and on-disk format.

A zoo for a system and an architecture holds a *base* expert, trained on all seen environments
(empirical risk minimisation, the One-for-All baseline), and, for every seen environment, ``size``
experts made by adding Gaussian noise to one randomly chosen layer (node group) of the base, a
different layer and seed per expert, and fine-tuning on that environment. With ``random_init``
the experts start from random initialisations instead (the paper's "w/o domain init" ablation).

On disk (``docs/zoo-format.md``)::

    DIR/manifest.json            what was built, how, and the sha256 of every shard
    DIR/timings.json             wall-clock seconds of the build (kept apart: shards and manifest
                                 of the same plan are byte-identical from build to build)
    DIR/dataset.h5               the system's trajectories the zoo was trained on
    DIR/base.safetensors         the base expert, parameters [1, ...]
    DIR/env-0007.safetensors     the kept experts of environment 7, parameters [K, ...]

Shards and the manifest are written atomically, the manifest after each shard, so an interrupted
build resumes where it stopped: finished environments are verified and kept, the rest are trained
(from seeds that do not depend on what was done before, so the result is the same). Experts whose
best validation loss is not finite or above ``max_loss`` are dropped and recorded in the manifest.
Loading trusts nothing in the folder: :meth:`Zoo.load` checks the manifest, paths, dataset and shards.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from weightspace import __version__
from weightspace.architecture import ArchitectureAdapter
from weightspace.config import MAX_COUNT, config_to_dict, make_config, require_at_most, require_positive
from weightspace.data.dataset import Dataset, load_dataset, read_env_index, write_dataset
from weightspace.data.simulation import build_dataset
from weightspace.data.trajectories import ChannelScale, by_environment
from weightspace.errors import ConfigError, StorageError, WeightspaceError
from weightspace.graph import GraphSpec, Params, check_params
from weightspace.metrics import rollout_experts
from weightspace.parallel import LocalPool, RayPool
from weightspace.progress import ZooProgress
from weightspace.registry import Registry, default_registry
from weightspace.storage import (
    atomic_path,
    check_keys,
    confined,
    json_excerpt,
    load_tensors,
    read_json,
    save_tensors,
    write_json,
)
from weightspace.system import System, derived_seed
from weightspace.zoo.trainer import TrainConfig, TrainingData, TrainResult, train_experts

FORMAT = "weightspace-zoo"
FORMAT_VERSION = 1
TIMINGS = "timings.json"
"""Beside the manifest: the seconds the base took to train. Not part of the zoo's content."""


class TrainingError(WeightspaceError):
    """Training failed in a way the user must act on (e.g. the base expert diverged)."""


MAX_ZOO_SIZE = 10_000
"""Experts per seen environment at most: a hundred times the paper's zoo, and still a few gigabytes
of stacked parameters for a small network; a larger size is a typo to refuse before allocating."""


@dataclass(frozen=True)
class ZooSettings:
    size: int = 10
    """Experts per seen environment."""
    random_init: bool = False
    """Start experts from random initialisations instead of the perturbed base (ablation)."""
    perturb_scale: float = 0.1
    """Std of the noise added to the chosen layer, relative to that layer's own std."""
    n_val: int = 1
    """Training trajectories per environment held out for validation (early stopping, manifest RMSE)."""
    base_steps: int = 2000
    expert_steps: int = 300
    """Steps of each expert's fine-tuning (from random init: ``base_steps``)."""
    lr: float = 2e-3
    """Peak learning rate of the base (and of experts from random init)."""
    expert_lr: float = 1e-3
    batch_size: int = 16
    unroll: int = 1
    eval_every: int = 50
    patience: int = 4
    grad_clip: float = 1.0
    expert_batch: int = 16
    """Experts trained together as one stacked tensor (1: one at a time); see benchmarks/."""
    max_loss: float = 1.0
    """Normalized validation MSE above which an expert counts as diverged (1 = no better than the mean)."""

    def __post_init__(self) -> None:
        require_positive(self, "size", "perturb_scale", "n_val", "base_steps", "expert_steps", "lr", "expert_lr")
        require_positive(self, "batch_size", "unroll", "eval_every", "patience", "grad_clip", "expert_batch")
        require_positive(self, "max_loss")
        require_at_most(self, MAX_ZOO_SIZE, "size")
        require_at_most(self, MAX_COUNT, "n_val", "base_steps", "expert_steps", "batch_size", "unroll")
        require_at_most(self, MAX_COUNT, "eval_every", "patience", "expert_batch")

    def training(self, *, base: bool) -> TrainConfig:
        """The trainer config of the base (or of experts from random init) or of fine-tuned experts."""
        scratch = base or self.random_init
        return TrainConfig(
            steps=self.base_steps if scratch else self.expert_steps,
            lr=self.lr if scratch else self.expert_lr,
            batch_size=self.batch_size,
            unroll=self.unroll,
            grad_clip=self.grad_clip,
            eval_every=self.eval_every,
            patience=self.patience,
        )


PROFILES: dict[str, dict[str, Any]] = {
    # expert_batch 4: the fastest chunk for the quick FNO on 2 CPU cores (benchmarks/README.md)
    "quick": {"size": 8, "base_steps": 1000, "expert_steps": 200, "eval_every": 50, "expert_batch": 4},
    "paper": {
        "size": 100,
        "base_steps": 20000,
        "expert_steps": 2000,
        "batch_size": 32,
        "eval_every": 200,
        "expert_batch": 16,
    },
}


@dataclass(frozen=True)
class ZooPlan:
    """Everything that determines a zoo: system (with profile settings), architecture, settings, seed."""

    system: System
    adapter: ArchitectureAdapter
    settings: ZooSettings
    seed: int

    def identity(self) -> dict[str, Any]:
        """The JSON description a zoo directory must match to be resumed."""
        return {
            "system": self.system.name,
            "profile": self.system.profile,
            "system_settings": config_to_dict(self.system.settings),
            "architecture": self.adapter.name,
            "architecture_config": config_to_dict(self.adapter.config),
            "settings": config_to_dict(self.settings),
            "seed": self.seed,
        }


def plan_zoo(
    registry: Registry,
    system: str,
    architecture: str,
    profile: str = "quick",
    seed: int = 0,
    *,
    system_overrides: dict[str, Any] | None = None,
    architecture_overrides: dict[str, Any] | None = None,
    zoo_overrides: dict[str, Any] | None = None,
) -> ZooPlan:
    """Resolve names and overrides into a :class:`ZooPlan`: profile defaults, then the architecture's
    own profile, then the user's overrides; the architecture's channels and grid follow the data."""
    sys_obj = registry.system(system, profile, system_overrides)
    cls = registry.get("architectures", architecture)
    arch_profile = cls.profiles.get(profile, {})
    state_shape = tuple(sys_obj.state_shape())
    if len(state_shape) != cls.input_ndim:
        raise ConfigError(
            f"architecture {architecture!r} takes states of {cls.input_ndim} dimension(s) "
            f"but system {system!r} has states of shape {list(state_shape)}"
        )
    implied = cls.data_overrides(state_shape)
    user = dict(architecture_overrides or {})
    for key, value in implied.items():
        if key in user and cls.from_overrides({key: user[key]}).config.__dict__[key] != value:
            raise ConfigError(f"{architecture} {key}={user[key]!r} does not fit {system}'s data, which needs {value!r}")
    adapter = cls.from_overrides({**arch_profile.get("architecture", {}), **user, **implied})
    settings = make_config(
        ZooSettings,
        {**PROFILES.get(profile, {}), **arch_profile.get("zoo", {}), **(zoo_overrides or {})},
        owner="zoo",
    )
    return ZooPlan(sys_obj, adapter, settings, seed)


def check_input_fits(adapter: ArchitectureAdapter, system: str, state_shape: tuple[int, ...]) -> None:
    """Raise a :class:`ConfigError` unless one network of ``adapter`` maps a state of ``state_shape``
    to a state of the same shape, as a one-step operator and a vector field both must.

    A trial on one zero state (before any data are simulated) turns a channel or size mismatch,
    e.g. an architecture whose config does not follow the data (no ``data_overrides``), into one
    line naming both shapes instead of a traceback from inside the first training step."""
    expected = list(adapter.example_input(1, torch.Generator().manual_seed(0)).shape[1:])
    what = f"architecture {adapter.name!r} expects states like {expected} (its example input)"
    params = adapter.init_params(1, seed=0)
    try:
        with torch.no_grad():
            out = adapter.functional(params, torch.zeros(1, *state_shape))
    except Exception as exc:  # any failure of the trial call is the data not fitting the network
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{what}, but system {system!r} has states {list(state_shape)}: {reason}") from None
    if tuple(out.shape[2:]) != tuple(state_shape):
        raise ConfigError(
            f"{what} and maps system {system!r}'s states {list(state_shape)} to {list(out.shape[2:])}; "
            "its output must be shaped like its input"
        )


# -- on-disk format ------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    with atomic_path(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))


_NONE = type(None)
MANIFEST_KEYS: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "system": (str,),
    "profile": (str,),
    "system_settings": (dict,),
    "architecture": (str,),
    "architecture_config": (dict,),
    "graph_spec": (dict,),
    "settings": (dict,),
    "seed": (int,),
    "param_names": (list,),
    "dt": (int, float),
    "dataset": (str,),
    "dataset_sha256": (str,),
    "normalization": (dict,),
    "base": (dict, _NONE),
    "environments": (list,),
    "complete": (bool,),
}
"""Top-level keys of a manifest and their JSON types (``version`` is informative and not required)."""
_LOSSES = {k: (int, float, _NONE) for k in ("val_loss", "val_rmse")}
BASE_KEYS: dict[str, tuple[type, ...]] = {"file": (str,), "sha256": (str,), "seed": (int,), **_LOSSES}
ENVIRONMENT_KEYS: dict[str, tuple[type, ...]] = {
    "env_index": (int,),
    "env_params": (dict,),
    "file": (str,),
    "sha256": (str,),
    "experts": (list,),
    "dropped": (list,),
}
EXPERT_KEYS: dict[str, tuple[type, ...]] = {"seed": (int,), "perturbed_layer": (str, _NONE), **_LOSSES}
DROPPED_KEYS: dict[str, tuple[type, ...]] = {**EXPERT_KEYS, "reason": (str,)}
NORMALIZATION_KEYS: dict[str, tuple[type, ...]] = {"mean": (list,), "std": (list,)}


def _check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """The manifest's structure: required keys and types, a base record once complete, environment
    records (and their experts) well formed and each environment listed once."""
    where = f"zoo manifest {path}"
    check_keys(where, "", manifest, MANIFEST_KEYS)
    if manifest["base"] is None and manifest["complete"]:
        raise StorageError(f"{where}: 'base' is null but the zoo is marked complete; expected the base expert's record")
    if manifest["base"] is not None:
        check_keys(where, "base", manifest["base"], BASE_KEYS)
    _check_normalization(where, manifest["normalization"])
    seen: set[int] = set()
    for i, record in enumerate(manifest["environments"]):
        check_keys(where, f"environments[{i}]", record, ENVIRONMENT_KEYS)
        for j, expert in enumerate(record["experts"]):
            check_keys(where, f"environments[{i}].experts[{j}]", expert, EXPERT_KEYS)
        for j, expert in enumerate(record["dropped"]):
            check_keys(where, f"environments[{i}].dropped[{j}]", expert, DROPPED_KEYS)
        if record["env_index"] in seen:
            raise StorageError(f"{where}: environment {record['env_index']} is listed twice in 'environments'")
        seen.add(record["env_index"])


def _check_normalization(where: str, normalization: dict[str, Any]) -> None:
    """Per-channel ``mean`` and ``std``: equally long lists of finite numbers, every std positive,
    since every loss and RMSE divides by them (their count is checked against the architecture on load)."""
    check_keys(where, "normalization", normalization, NORMALIZATION_KEYS)
    for key in NORMALIZATION_KEYS:
        values = normalization[key]
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        if not values or not numbers or (key == "std" and min(values) <= 0):
            expected = "positive numbers" if key == "std" else "finite numbers"
            got = json_excerpt(values)
            raise StorageError(f"{where}: 'normalization.{key}' must be a list of {expected}, got {got}")
    if len(normalization["mean"]) != len(normalization["std"]):
        raise StorageError(f"{where}: 'normalization' must hold one mean and one std per channel")


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / "manifest.json"
    if not path.exists():
        return None
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StorageError(f"{path} is not a weightspace zoo manifest: expected a JSON object with format {FORMAT!r}")
    _check_manifest(path, manifest)
    return manifest


def _shard_path(out: Path, record: dict[str, Any], name: str) -> Path:
    """The shard of manifest entry ``name`` (``base``, ``environments[3]``), inside ``out``."""
    return confined(out, record["file"], f"zoo manifest {out / 'manifest.json'}: {name}.file")


def _shard_ok(out: Path, record: dict[str, Any], name: str) -> bool:
    path = _shard_path(out, record, name)
    return path.is_file() and sha256(path) == record["sha256"]


def _check_shard(out: Path, record: dict[str, Any], name: str, spec: GraphSpec, count: int) -> None:
    """Raise a :class:`StorageError` naming the shard unless its sha256 matches, its tensors are the
    spec's names, shapes and dtypes for ``count`` networks, and every value is finite."""
    path = _shard_path(out, record, name)
    if not _shard_ok(out, record, name):
        raise StorageError(f"zoo shard {path} ({name}) is missing or does not match its sha256")
    params = load_tensors(path)[0]
    try:
        check_params(spec, params, batched=True)
    except WeightspaceError as exc:
        raise StorageError(f"zoo shard {path} ({name}): {exc}") from None
    stored = next(iter(params.values())).shape[0]
    if stored != count:
        raise StorageError(f"zoo shard {path} ({name}) holds {stored} experts; the manifest lists {count}")


def _save_shard(out: Path, name: str, params: Params, record: dict[str, Any]) -> dict[str, Any]:
    path = out / name
    save_tensors(path, params, {"record": json.dumps(record)})
    return {**record, "file": name, "sha256": sha256(path)}


@dataclass(frozen=True)
class Zoo:
    """A zoo directory, checked on load: manifest, dataset and every shard (see :meth:`load`)."""

    path: Path
    manifest: dict[str, Any]
    adapter: ArchitectureAdapter
    scale: ChannelScale
    spec: GraphSpec = field(repr=False)

    @classmethod
    def load(cls, path: str | Path, registry: Registry | None = None) -> Zoo:
        """Load and verify the zoo in ``path``, raising a :class:`StorageError` on the first problem.

        Verified (what :attr:`verified` reports): the manifest's structure; paths inside ``path``;
        ``dataset.h5`` against ``dataset_sha256``; the environments against the dataset's seen ones,
        each once; the graph spec against the architecture's; every shard's sha256, tensor names,
        shapes and dtypes, expert count (the manifest's) and finite values."""
        path, registry = Path(path), registry or default_registry()
        manifest = _read_manifest(path)
        if manifest is None:
            raise StorageError(f"{path} is not a zoo: no manifest.json")
        if not manifest["complete"]:
            raise StorageError(f"zoo {path} is incomplete; rerun `weightspace zoo build` with the same options")
        where = f"zoo manifest {path / 'manifest.json'}"
        data = confined(path, manifest["dataset"], f"{where}: dataset")
        if not data.is_file() or sha256(data) != manifest["dataset_sha256"]:
            raise StorageError(f"zoo dataset {data} is missing or does not match the manifest's dataset_sha256")
        seen = set(read_env_index(data, "train").tolist())
        listed = {r["env_index"] for r in manifest["environments"]}
        if listed != seen:
            missing, extra = sorted(seen - listed), sorted(listed - seen)
            raise StorageError(
                f"{where}: 'environments' must list each seen environment of {data.name} once; "
                f"missing {missing or 'none'}, not seen {extra or 'none'}"
            )
        adapter = registry.architecture(manifest["architecture"], manifest["architecture_config"])
        try:
            spec = GraphSpec.from_json(json.dumps(manifest["graph_spec"]))
        except StorageError as exc:
            raise StorageError(f"{where}: 'graph_spec' is {exc}") from None
        if adapter.spec != spec:
            raise StorageError(f"zoo {path}: the graph spec in the manifest does not match {adapter.name}'s")
        channels = adapter.example_input(1, torch.Generator()).shape[1]
        if len(manifest["normalization"]["mean"]) != channels:
            raise StorageError(f"{where}: 'normalization' must hold {channels} channels, as {adapter.name} reads")
        _check_shard(path, manifest["base"], "base", adapter.spec, 1)
        for i, record in enumerate(manifest["environments"]):
            _check_shard(path, record, f"environments[{i}]", adapter.spec, len(record["experts"]))
        scale = ChannelScale.from_dict(manifest["normalization"], adapter.input_ndim)
        return cls(path, manifest, adapter, scale, adapter.spec)

    @property
    def verified(self) -> str:
        """What :meth:`load` verified, in words (``zoo info`` prints it)."""
        envs = len(self.manifest["environments"])
        return f"manifest ({envs} environments), {1 + envs} shards (sha256, shapes, finite), dataset sha256, graph spec"

    def system(self, registry: Registry | None = None) -> System:
        return (registry or default_registry()).system(
            self.manifest["system"], self.manifest["profile"], self.manifest["system_settings"]
        )

    def dataset(self) -> Dataset:
        where = f"zoo manifest {self.path / 'manifest.json'}: dataset"
        return load_dataset(confined(self.path, self.manifest["dataset"], where))

    def base(self) -> Params:
        """The base (One-for-All) expert, parameters ``[1, ...]``."""
        return load_tensors(_shard_path(self.path, self.manifest["base"], "base"))[0]

    def experts(self) -> tuple[Params, torch.Tensor]:
        """All kept experts ``{name: [N, ...]}`` and the environment index of each ``[N]``."""
        parts, envs = [], []
        for i, record in enumerate(self.manifest["environments"]):
            params = load_tensors(_shard_path(self.path, record, f"environments[{i}]"))[0]
            parts.append(params)
            envs.append(torch.full((len(record["experts"]),), record["env_index"]))
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, torch.cat(envs)

    @property
    def zoo_settings(self) -> ZooSettings:
        return make_config(ZooSettings, self.manifest["settings"], owner=f"zoo {self.path}")

    @property
    def dt(self) -> float:
        return float(self.manifest["dt"])

    @property
    def n_experts(self) -> int:
        return sum(len(r["experts"]) for r in self.manifest["environments"])


# -- building ------------------------------------------------------------------------------------
def perturb_layer(adapter: ArchitectureAdapter, base: Params, seed: int, scale: float) -> tuple[Params, str]:
    """``base`` (one network, ``[1, ...]``) with Gaussian noise on one node group chosen by ``seed``:
    noise std = ``scale`` x the group's feature std. Returns the parameters and the group's name."""
    generator = torch.Generator().manual_seed(seed)
    graph = adapter.to_graph(base)
    choice = int(torch.randint(len(graph.spec.groups), (1,), generator=generator))
    name = graph.spec.groups[choice].name

    def noisy(g, t: torch.Tensor) -> torch.Tensor:
        if g.name != name:
            return t
        return t + scale * t.std() * torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)

    return adapter.from_graph(graph.map(noisy)), name


def _dataset(plan: ZooPlan, out: Path, device: torch.device, log: Callable[[str], None]) -> Dataset:
    path = out / "dataset.h5"
    if path.exists():
        dataset = load_dataset(path)
        recorded = (dataset.attrs["system"], dataset.attrs["seed"], dataset.attrs["settings"])
        wanted = (plan.system.name, plan.seed, config_to_dict(plan.system.settings))
        if recorded != wanted:
            raise StorageError(
                f"{path} was simulated with other settings than this zoo's; remove it or use another --out"
            )
        return dataset
    log(f"simulating {plan.system.name} ({plan.system.profile})")
    dataset = build_dataset(plan.system, plan.seed, device=device)
    write_dataset(path, dataset)
    return dataset


def _split_validation(traj: torch.Tensor, n_val: int) -> tuple[torch.Tensor, torch.Tensor]:
    if traj.shape[1] <= n_val:
        raise ConfigError(f"n_val={n_val} leaves no training trajectories ({traj.shape[1]} per environment)")
    return traj[:, :-n_val], traj[:, -n_val:]


def _expert_record(result: TrainResult, i: int, val_rmse: float) -> dict[str, Any]:
    return {
        "train_loss": _num(result.train_loss[i]),
        "val_loss": _num(result.val_loss[i]),
        "val_rmse": _num(val_rmse),
        "best_step": int(result.best_step[i]),
    }


def _num(x: torch.Tensor | float) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def build_zoo(
    plan: ZooPlan,
    out: str | Path,
    device: str | torch.device = "cpu",
    progress: ZooProgress | None = None,
    registry: Registry | None = None,
    pool: LocalPool | RayPool | None = None,
) -> Zoo:
    """Build (or resume) the zoo of ``plan`` in ``out`` and return it loaded and verified.

    The experts' chunks run on ``pool`` (default: one after the other in this process); every chunk
    is seeded by its experts alone, so a :class:`RayPool` builds the same zoo as a local build."""
    out, device, progress = Path(out), torch.device(device), progress or ZooProgress()
    out.mkdir(parents=True, exist_ok=True)
    adapter, s = plan.adapter, plan.settings
    identity = plan.identity()
    manifest = _read_manifest(out)
    if manifest is not None and {k: manifest.get(k) for k in identity} != identity:
        changed = sorted(k for k in identity if manifest.get(k) != identity[k])
        raise StorageError(f"{out} holds a zoo built with other {', '.join(changed)}; use another --out")

    check_input_fits(adapter, plan.system.name, tuple(plan.system.state_shape()))
    dataset = _dataset(plan, out, device, progress.log)
    seen, seen_params, train_traj = by_environment(dataset["train"])
    train, val = _split_validation(train_traj.to(device), s.n_val)
    scale = ChannelScale.fit(train, adapter.input_ndim)
    if manifest is None:
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": f"weightspace {__version__}, torch {torch.__version__}",
            **identity,
            "graph_spec": json.loads(adapter.spec.to_json()),
            "param_names": dataset.attrs["param_names"],
            "dt": dataset.dt,
            "dataset": "dataset.h5",
            "dataset_sha256": sha256(out / "dataset.h5"),
            "normalization": scale.to_dict(),
            "base": None,
            "environments": [],
            "complete": False,
        }
        _write_manifest(out, manifest)

    # the base expert: ERM over all seen environments pooled into one data group
    pooled = TrainingData(train.flatten(0, 1)[None], val.flatten(0, 1)[None], scale, dataset.dt)
    if manifest["base"] is not None and _shard_ok(out, manifest["base"], "base"):
        base = load_tensors(_shard_path(out, manifest["base"], "base"), device)[0]
    else:
        config = s.training(base=True)
        progress.stage("base expert (all seen environments)", config.steps)
        base_seed = derived_seed(plan.seed, "base")
        init = adapter.init_params(1, base_seed, device)
        result = train_experts(adapter, init, pooled, [0], [base_seed], config, advance=progress.advance)
        rmse = rollout_experts(adapter, result.params, pooled.val, scale, dataset.dt, s.expert_batch).rmse.mean(dim=1)
        if not (result.val_loss[0] <= s.max_loss):
            raise TrainingError(
                f"the base expert diverged (validation loss {float(result.val_loss[0]):.3g} > max_loss "
                f"{s.max_loss:g}); lower lr or check the data"
            )
        base = result.params
        record = {"seed": base_seed, **_expert_record(result, 0, float(rmse[0]))}
        manifest["base"] = _save_shard(out, "base.safetensors", base, record)
        _write_manifest(out, manifest)
        write_json(out / TIMINGS, {"base_seconds": result.seconds})

    # the experts, in chunks of expert_batch over the pending environments (a chunk may span two);
    # an environment's shard is written as soon as its last expert is trained, so a rerun resumes
    done = {r["env_index"] for i, r in enumerate(manifest["environments"]) if _shard_ok(out, r, f"environments[{i}]")}
    manifest["environments"] = [r for r in manifest["environments"] if r["env_index"] in done]
    pending = [i for i, e in enumerate(seen.tolist()) if e not in done]
    config = s.training(base=False)
    progress.stage(f"{s.size} experts x {len(pending)} environments", len(pending) * s.size * config.steps)
    jobs = [(pos, slot) for pos in pending for slot in range(s.size)]
    chunks = [
        [
            (pos, slot, derived_seed(plan.seed, "expert", int(seen[pos]), slot))
            for pos, slot in jobs[lo : lo + s.expert_batch]
        ]
        for lo in range(0, len(jobs), s.expert_batch)
    ]
    pool = pool or LocalPool()
    local = isinstance(pool, LocalPool)
    home = device if local else torch.device("cpu")  # Ray's object store holds CPU tensors
    shared = {
        "adapter": adapter,
        "base": {k: v.to(home) for k, v in base.items()},
        "data": TrainingData(train.to(home), val.to(home), scale, dataset.dt),
        "settings": s,
        "device": device,
        "advance": progress.advance if local else None,
    }
    finished: dict[int, list[tuple[int, Params, dict[str, Any]]]] = {}
    for i, (params, records) in pool.map(train_chunk, shared, chunks):
        if not local:
            progress.advance(len(chunks[i]) * config.steps)
        for j, ((pos, _, _), record) in enumerate(zip(chunks[i], records)):
            finished.setdefault(pos, []).append((record["slot"], {k: v[j] for k, v in params.items()}, record))
            if len(finished[pos]) == s.size:
                manifest["environments"].append(
                    _finish_environment(out, plan, seen, seen_params, pos, finished.pop(pos))
                )
                manifest["environments"].sort(key=lambda r: r["env_index"])
                _write_manifest(out, manifest)
                progress.environment_done(int(seen[pos]))

    manifest["complete"] = True
    _write_manifest(out, manifest)
    return Zoo.load(out, registry)


def train_chunk(
    chunk: list[tuple[int, int, int]],
    *,
    adapter: ArchitectureAdapter,
    base: Params,
    data: TrainingData,
    settings: ZooSettings,
    device: torch.device,
    advance: Callable[[int], None] | None = None,
) -> tuple[Params, list[dict[str, Any]]]:
    """Train one chunk of experts, each ``(environment position, slot, seed)``, from the perturbed
    ``base`` (or random init); their parameters (on the CPU) and manifest records, in chunk order."""
    data = TrainingData(data.train.to(device), data.val.to(device), data.scale, data.dt)
    base = {k: v.to(device) for k, v in base.items()}
    group, seeds = [pos for pos, _, _ in chunk], [seed for _, _, seed in chunk]
    inits, layers = [], []
    for seed in seeds:
        if settings.random_init:
            inits.append(adapter.init_params(1, seed, device))
            layers.append(None)
        else:
            params, layer = perturb_layer(adapter, base, seed, settings.perturb_scale)
            inits.append(params)
            layers.append(layer)
    init = {k: torch.cat([p[k] for p in inits]) for k in inits[0]}
    result = train_experts(adapter, init, data, group, seeds, settings.training(base=False), advance=advance)
    rmse = rollout_experts(adapter, result.params, data.val[group], data.scale, data.dt, settings.expert_batch)
    rmse = rmse.rmse.mean(dim=1)
    records = [
        {"slot": slot, "seed": seed, "perturbed_layer": layer, **_expert_record(result, i, rmse[i])}
        for i, ((_, slot, seed), layer) in enumerate(zip(chunk, layers))
    ]
    return {k: v.cpu() for k, v in result.params.items()}, records


def _finish_environment(
    out: Path,
    plan: ZooPlan,
    seen: torch.Tensor,
    seen_params: torch.Tensor,
    pos: int,
    experts: list[tuple[int, Params, dict[str, Any]]],
) -> dict[str, Any]:
    """Store an environment's kept experts as one shard; diverged ones are recorded, not stored."""
    max_loss = plan.settings.max_loss
    kept = [
        (p, r)
        for _, p, r in sorted(experts, key=lambda e: e[0])
        if r["val_loss"] is not None and r["val_loss"] <= max_loss
    ]
    dropped = [
        {
            **r,
            "reason": "non-finite validation loss" if r["val_loss"] is None else f"validation loss above {max_loss:g}",
        }
        for _, _, r in sorted(experts, key=lambda e: e[0])
        if r["val_loss"] is None or r["val_loss"] > max_loss
    ]
    env_index = int(seen[pos])
    record = {
        "env_index": env_index,
        "env_params": dict(zip(plan.system.param_names, seen_params[pos].tolist())),
        "experts": [r for _, r in kept],
        "dropped": dropped,
    }
    if not kept:
        raise TrainingError(f"every expert of environment {env_index} diverged; lower expert_lr or perturb_scale")
    params = {k: torch.stack([p[k] for p, _ in kept]) for k in kept[0][0]}
    return _save_shard(out, f"env-{env_index:04d}.safetensors", params, record)
