"""A bench matrix: systems x architectures x methods x ablations x sweeps x seeds, expanded into cells.

A matrix is a TOML file (``benchmarks/matrices/*.toml``)::

    profile = "quick"                  # optional: replaces every run config's profile
    seeds = [0, 1]
    observed_frames = 4                # L of the main tables
    candidates = 16                    # generated candidates per environment
    finetune_steps = 100               # finetune-L and diffusion-init
    baselines = ["one-for-all", "one-per-env", "finetune-L", "nearest-zoo"]

    [set]                              # merged into every cell's run config (like `extends`)
    generator_training = { steps = 2000 }

    [systems.lotka-volterra]           # a label and the run config of its main method (dynadiff)
    config = "../../configs/lotka-volterra-quick.toml"
    architectures = ["mlp-node"]       # optional: the config's own by default

    [methods.dynadiff]                 # the system's config as it is
    [methods.flat-vae]                 # another run config ({system} is the system's label) ...
    config = "../../configs/{system}-flat-vae.toml"
    [methods.diffusion-init]           # ... evaluated as sample-then-fine-tune
    config = "../../configs/{system}-mlp-diffusion.toml"
    evaluate = "diffusion-init"

    [ablations.no-function-loss]       # the first method's config with changes
    set = { encoder = { function_weight = 0.0 } }

    [sweeps]                           # the first method re-run along one axis at a time
    observed_frames = [1, 2, 4, 8]     # evaluation only: one trained run, several L
    zoo_size = [2, 4, 8]               # experts per seen environment: a zoo per value

Paths are relative to the matrix file. A cell is one evaluation: a run config (or, for the
baselines, the zoo of the system's config) and how to evaluate it. ``expand`` lists the cells;
the bench (:mod:`weightspace.bench`) turns them into stages and runs what is missing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightspace.baselines import BASELINES
from weightspace.errors import ConfigError
from weightspace.run import TOP_LEVEL, RunConfig, merge_config, read_config_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EVALUATIONS = ("generated", "diffusion-init")
"""How a method's trained run is evaluated: its own generated experts, or generated then fine-tuned."""

SWEEPS = ("observed_frames", "zoo_size")
GROUPS = ("method", "baseline", "ablation", "sweep")
MATRIX_KEYS = ("profile", "seeds", "observed_frames", "candidates", "finetune_steps", "baselines")
MATRIX_KEYS += ("set", "systems", "methods", "ablations", "sweeps")


@dataclass(frozen=True)
class Variant:
    """A method or an ablation: where its run config comes from and how it is evaluated."""

    label: str
    config: str | None = None
    """A run config path template (``{system}`` is replaced); None: the system's config."""
    changes: dict[str, Any] = field(default_factory=dict)
    evaluate: str = "generated"
    """One of ``EVALUATIONS``, or ``baselines`` for the cell that evaluates the matrix's baselines."""


@dataclass(frozen=True)
class Cell:
    """One evaluation of the matrix. ``config`` is the run config (a dict ``RunConfig.from_dict``
    reads); for a ``baseline`` cell only its zoo matters. ``sweep`` names the swept axis and value."""

    system: str
    architecture: str
    method: str
    group: str
    seed: int
    config: dict[str, Any]
    evaluate: str
    observed_frames: int
    sweep: tuple[str, int] | None = None

    @property
    def id(self) -> str:
        tail = f"/{self.sweep[0]}={self.sweep[1]}" if self.sweep else ""
        return f"{self.system}/{self.architecture}/{self.method}{tail}/seed{self.seed}"

    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(self.config, self.id)


@dataclass(frozen=True)
class Matrix:
    path: Path
    seeds: tuple[int, ...]
    systems: dict[str, dict[str, Any]]
    """label -> {"config": resolved path, "architectures": [...] or None}"""
    methods: tuple[Variant, ...]
    ablations: tuple[Variant, ...]
    sweeps: dict[str, tuple[int, ...]]
    baselines: tuple[str, ...]
    changes: dict[str, Any]
    profile: str | None = None
    observed_frames: int = 4
    candidates: int = 16
    finetune_steps: int = 100

    @classmethod
    def from_toml(cls, path: str | Path) -> Matrix:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no such matrix file: {path}")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> Matrix:
        where = str(path)
        unknown = sorted(set(data) - set(MATRIX_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; keys: {', '.join(MATRIX_KEYS)}")
        if not data.get("systems"):
            raise ConfigError(f"{where} names no [systems.<label>] with a run config")
        if not data.get("methods"):
            raise ConfigError(f"{where} names no [methods.<label>]; the first is the one ablations and sweeps vary")
        systems = {}
        for label, entry in data["systems"].items():
            if not isinstance(entry, dict) or "config" not in entry:
                raise ConfigError(f"{where}: [systems.{label}] needs config = <run config path>")
            extra = sorted(set(entry) - {"config", "architectures"})
            if extra:
                raise ConfigError(f"{where}: [systems.{label}] has unknown key(s) {', '.join(extra)}")
            systems[label] = {"config": path.parent / entry["config"], "architectures": entry.get("architectures")}
        baselines = tuple(data.get("baselines", ()))
        for name in baselines:
            if name not in BASELINES:
                raise ConfigError(f"{where}: unknown baseline {name!r}; baselines: {', '.join(BASELINES)}")
        sweeps = {}
        for name, values in data.get("sweeps", {}).items():
            if name not in SWEEPS:
                raise ConfigError(f"{where}: unknown sweep {name!r}; sweeps: {', '.join(SWEEPS)}")
            if not values or not all(isinstance(v, int) and v > 0 for v in values):
                raise ConfigError(f"{where}: sweep {name} must list positive integers, got {values!r}")
            sweeps[name] = tuple(values)
        seeds = tuple(data.get("seeds", (0,)))
        if not seeds or not all(isinstance(s, int) for s in seeds):
            raise ConfigError(f"{where}: seeds must be a non-empty list of integers, got {seeds!r}")
        options = {k: data[k] for k in ("profile", "observed_frames", "candidates", "finetune_steps") if k in data}
        return cls(
            path=path,
            seeds=seeds,
            systems=systems,
            methods=_variants(data["methods"], f"{where} [methods]"),
            ablations=_variants(data.get("ablations", {}), f"{where} [ablations]"),
            sweeps=sweeps,
            baselines=baselines,
            changes=data.get("set", {}),
            **options,
        )

    def expand(self) -> list[Cell]:
        """Every cell, in report order: per system and architecture, per seed, the methods, the
        baselines, the ablations, then the sweeps."""
        cells = []
        for system, entry in self.systems.items():
            base = read_config_toml(entry["config"])
            for architecture in entry["architectures"] or [base["architecture"]]:
                for seed in self.seeds:
                    cells += self._cells(system, architecture, seed, base)
        return cells

    def _config(self, system: str, variant: Variant, architecture: str, seed: int, base: dict) -> dict[str, Any]:
        config = base
        if variant.config is not None:
            config = read_config_toml(self.path.parent / variant.config.format(system=system))
        config = merge_config(config, self.changes)
        config = merge_config(config, variant.changes)
        if architecture != config["architecture"]:  # the base's architecture settings belong to another one
            config = {k: v for k, v in config.items() if k != "architecture_config"}
        top = {"architecture": architecture, "seed": seed, "method": variant.label}
        if self.profile is not None:
            top["profile"] = self.profile
        return {**config, **top}

    def _cells(self, system: str, architecture: str, seed: int, base: dict) -> list[Cell]:
        def cell(variant: Variant, group: str, **kw: Any) -> Cell:
            config = self._config(system, variant, architecture, seed, base)
            frames = kw.pop("observed_frames", self.observed_frames)
            return Cell(system, architecture, variant.label, group, seed, config, variant.evaluate, frames, **kw)

        main = self.methods[0]
        cells = [cell(m, "method") for m in self.methods]
        if self.baselines:  # one cell evaluates them all, on the zoo of the first method
            cells.append(cell(Variant("baselines", main.config, main.changes, "baselines"), "baseline"))
        cells += [
            cell(Variant(a.label, main.config, merge_config(main.changes, a.changes), main.evaluate), "ablation")
            for a in self.ablations
        ]
        for value in self.sweeps.get("observed_frames", ()):
            cells.append(cell(main, "sweep", observed_frames=value, sweep=("observed_frames", value)))
        for value in self.sweeps.get("zoo_size", ()):
            changes = merge_config(main.changes, {"zoo": {"size": value}})
            cells.append(
                cell(Variant(main.label, main.config, changes, main.evaluate), "sweep", sweep=("zoo_size", value))
            )
        return cells


def _variants(table: dict[str, Any], where: str) -> tuple[Variant, ...]:
    variants = []
    for label, entry in table.items():
        entry = dict(entry or {})
        extra = sorted(set(entry) - {"config", "set", "evaluate"})
        if extra:
            raise ConfigError(f"{where}.{label}: unknown key(s) {', '.join(extra)}; keys: config, set, evaluate")
        evaluate = entry.get("evaluate", "generated")
        if evaluate not in EVALUATIONS:
            raise ConfigError(f"{where}.{label}: evaluate = {evaluate!r}; choose from {', '.join(EVALUATIONS)}")
        changes = entry.get("set", {})
        bad = sorted(set(changes) & set(TOP_LEVEL) - {"profile"})
        if bad:
            raise ConfigError(f"{where}.{label}: set cannot change {', '.join(bad)} (the matrix's axes decide them)")
        variants.append(Variant(label, entry.get("config"), changes, evaluate))
    return tuple(variants)
