"""A bench matrix: systems x architectures x methods x ablations x sweeps x seeds, expanded into cells.

A matrix is a TOML file (``benchmarks/matrices/*.toml``)::

    profile = "quick"                  # optional: replaces every run config's profile
    seeds = [0, 1]
    observed_frames = 4                # L of the main tables
    candidates = 16                    # generated candidates per environment
    finetune_steps = 100               # finetune-L and diffusion-init
    finetune_budgets = [10, 100, 1000] # optional: finetune-L out of domain at each budget, to time
                                       # how long fine-tuning takes to reach the generated RMSE
    baselines = ["one-for-all", "one-per-env", "finetune-L", "nearest-zoo"]  # registered methods
                                       # that need only the zoo (`weightspace plugins` lists them)
    baseline_settings = { finetune-L = { ... } }  # optional: keyword arguments of baselines by name
    [set]                              # merged into every cell's run config (like `extends`)
    generator_training = { steps = 2000 }

    [systems.lotka-volterra]           # a label and the run config of its main method (dynadiff)
    config = "../../configs/lotka-volterra-quick.toml"
    architectures = ["mlp-node"]       # optional: the config's own by default
    set = { system_settings = { n_test = 4 } }  # optional: this system's cells only, after [set]
    baseline_settings = { one-per-env = { starts = ["base"] } }  # optional: over the matrix's, per
                                       # baseline (checked at once)

    [methods.dynadiff]                 # the system's config as it is
    [methods.flat-vae]                 # another run config ({system} is the system's label) ...
    config = "../../configs/{system}-flat-vae.toml"
    [methods.diffusion-init]           # ... evaluated as sample-then-fine-tune
    config = "../../configs/{system}-mlp-diffusion.toml"
    evaluate = "diffusion-init"        # a registered method that adapts a run (default: generated)
    [methods.dynadiff-paper]           # a method with its own evaluation options (optional)
    config = "../../configs/{system}-dynadiff-paper.toml"
    candidates = 1                     # one sample, no selection (default: the matrix's candidates)
    observed_frames = 10               # its L (default: the matrix's observed_frames)
    [methods.tilted]                   # a run evaluated by a method with settings of its own
    config = "../../configs/{system}-flow-matching.toml"
    evaluate = "adjoint-matching"
    settings = { reward_scale = 3.0 }  # the evaluating method's keyword arguments (checked at once)

    [ablations.no-function-loss]       # the first method's config with changes (and its evaluation
    set = { encoder = { function_weight = 0.0 } }  # options, unless the ablation sets its own)

    [sweeps]                           # the first method re-run along one axis at a time
    observed_frames = [1, 2, 4, 8]     # evaluation only: one trained run, several L
    zoo_size = [2, 4, 8]               # experts per seen environment: a zoo per value

Paths are relative to the matrix file. ``candidates`` and ``observed_frames`` (positive integers) in
a method or ablation entry replace the matrix's for that entry's cells; a sweep of
``observed_frames`` still sets L of its own cells, and the baselines' cell keeps the matrix's
options. Whether L frames fit the system's trajectory is checked where the frames are taken (when
the cell is evaluated), as for the matrix's own L. A cell is one evaluation: a run config (or, for
the baselines, the zoo of the system's config) and how to evaluate it. ``expand`` lists the cells;
the bench (:mod:`weightspace.bench.runner`) turns them into stages and runs what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightspace.errors import ConfigError
from weightspace.method import RUN_METHOD
from weightspace.pipeline.config import (
    TOP_LEVEL,
    RunConfig,
    format_config_path,
    merge_config,
    read_config_toml,
)
from weightspace.registry import default_registry
from weightspace.storage import read_toml

SWEEPS = ("observed_frames", "zoo_size")
BASELINES_LABEL = "baselines"
"""The label of the cell that evaluates a matrix's baselines."""
MATRIX_KEYS = ("profile", "seeds", "observed_frames", "candidates", "finetune_steps", "finetune_budgets", "baselines")
MATRIX_KEYS += ("baseline_settings", "set", "systems", "methods", "ablations", "sweeps")
SYSTEM_KEYS = ("config", "architectures", "set", "baseline_settings")
EVALUATION_KEYS = ("candidates", "observed_frames")
"""Evaluation options a method or ablation entry may set for its own cells."""
VARIANT_KEYS = ("config", "set", "evaluate", "settings", *EVALUATION_KEYS)


@dataclass(frozen=True)
class Variant:
    """A method or an ablation: where its run config comes from and how it is evaluated."""

    label: str
    config: str | None = None
    """A run config path template (``{system}`` is replaced); None: the system's config."""
    changes: dict[str, Any] = field(default_factory=dict)
    evaluate: str = RUN_METHOD
    """The registered method that evaluates the trained run, or ``baselines`` for the cell that
    evaluates the matrix's baselines."""
    candidates: int | None = None
    """Generated candidates per environment in this variant's cells; None: the matrix's."""
    observed_frames: int | None = None
    """L of this variant's cells; None: the matrix's."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the method that evaluates this variant's runs (its own defaults: none)."""

    def with_changes(self, label: str, changes: dict[str, Any], options: Variant | None = None) -> Variant:
        """This variant's run config with more ``changes``, labelled ``label`` (ablations, sweeps),
        evaluated with ``options``' candidates and observed frames where it sets them, else this one's."""
        own = options or Variant(label)
        candidates = self.candidates if own.candidates is None else own.candidates
        frames = self.observed_frames if own.observed_frames is None else own.observed_frames
        changes = merge_config(self.changes, changes)
        return Variant(label, self.config, changes, self.evaluate, candidates, frames, self.settings)


@dataclass(frozen=True)
class Cell:
    """One evaluation of the matrix. ``config`` is the run config (a dict ``RunConfig.from_dict``
    reads); for a ``baseline`` cell only its zoo matters. ``sweep`` names the swept axis and value."""

    system: str
    architecture: str
    method: str
    group: str
    """``method``, ``baseline``, ``ablation`` or ``sweep``."""
    seed: int
    config: dict[str, Any]
    evaluate: str
    observed_frames: int
    sweep: tuple[str, int] | None = None
    candidates: int = 16
    """Generated candidates per environment (the matrix's, or the method entry's own)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the evaluating method (its variant's ``settings``); for the baselines'
    cell, keyword arguments by baseline name."""

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
    """label -> {"config": resolved path, "architectures": (...) or None, "changes": {...},
    "baseline_settings": {baseline: {...}} (the matrix's with the system's over them)}"""
    methods: tuple[Variant, ...]
    ablations: tuple[Variant, ...]
    sweeps: dict[str, tuple[int, ...]]
    baselines: tuple[str, ...]
    changes: dict[str, Any]
    profile: str | None = None
    observed_frames: int = 4
    candidates: int = 16
    finetune_steps: int = 100
    finetune_budgets: tuple[int, ...] = ()

    @classmethod
    def from_toml(cls, path: str | Path) -> Matrix:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no such matrix file: {path}")
        return cls.from_dict(read_toml(path), path)

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
        registered = _methods()
        zoo_only = sorted(name for name, cls in registered.items() if not cls.needs_run)
        baselines = _list_of(data, "baselines", str, where, default=()) if data.get("baselines") else ()
        for name in baselines:
            if name not in zoo_only:
                raise ConfigError(
                    f"{where}: unknown baseline {name!r}; methods that need only a zoo: {', '.join(zoo_only)}"
                )
        shared = _baseline_settings(data, baselines, where)
        systems = {}
        for label, entry in _table(data, "systems", where).items():
            _check_label(label, f"{where} [systems]")
            if not isinstance(entry, dict) or "config" not in entry:
                raise ConfigError(f"{where}: [systems.{label}] needs config = <run config path>")
            extra = sorted(set(entry) - set(SYSTEM_KEYS))
            if extra:
                raise ConfigError(
                    f"{where}: [systems.{label}] has unknown key(s) {', '.join(extra)}; keys: {', '.join(SYSTEM_KEYS)}"
                )
            architectures = None
            if "architectures" in entry:
                architectures = _list_of(entry, "architectures", str, f"{where} [systems.{label}]")
            system_changes = _table(entry, "set", f"{where} [systems.{label}]")
            _check_changes(system_changes, f"{where} [systems.{label}] set")
            own = _baseline_settings(entry, baselines, f"{where} [systems.{label}]")
            systems[label] = {
                "config": path.parent / str(entry["config"]),
                "architectures": architectures,
                "changes": system_changes,
                "baseline_settings": {
                    name: {**shared.get(name, {}), **own.get(name, {})} for name in sorted({*shared, *own})
                },
            }
        sweeps = {}
        for name in _table(data, "sweeps", where):
            if name not in SWEEPS:
                raise ConfigError(f"{where}: unknown sweep {name!r}; sweeps: {', '.join(SWEEPS)}")
            sweeps[name] = _list_of(data["sweeps"], name, int, f"{where} [sweeps]", positive=True)
        options: dict[str, Any] = {}
        for key in ("observed_frames", "candidates", "finetune_steps"):
            if key in data:
                options[key] = _positive_int(data, key, where)
        if "profile" in data:
            options["profile"] = str(data["profile"])
        if "finetune_budgets" in data:
            options["finetune_budgets"] = _list_of(data, "finetune_budgets", int, where, positive=True)
        changes = _table(data, "set", where)
        _check_changes(changes, f"{where} [set]")
        run_methods = sorted(name for name, cls in registered.items() if cls.needs_run)
        methods = _variants(_table(data, "methods", where), f"{where} [methods]", run_methods)
        ablations = _variants(_table(data, "ablations", where), f"{where} [ablations]", run_methods)
        labels = [v.label for v in (*methods, *ablations)]
        clash = sorted({x for x in labels if labels.count(x) > 1} | (set(labels) & {*zoo_only, BASELINES_LABEL}))
        if clash:
            raise ConfigError(f"{where}: label(s) {', '.join(clash)} used twice (methods, ablations and baselines)")
        return cls(
            path=path,
            seeds=_list_of(data, "seeds", int, where, default=(0,)),
            systems=systems,
            methods=methods,
            ablations=ablations,
            sweeps=sweeps,
            baselines=baselines,
            changes=changes,
            **options,
        )

    def expand(self) -> list[Cell]:
        """Every cell, in report order: per system and architecture, per seed, the methods, the
        baselines, the ablations, then the sweeps."""
        cells = []
        for system, entry in self.systems.items():
            base = read_config_toml(entry["config"])
            if "architecture" not in base:
                raise ConfigError(f"{entry['config']} names no architecture")
            for architecture in entry["architectures"] or [base["architecture"]]:
                for seed in self.seeds:
                    cells += self._cells(system, architecture, seed, base)
        return cells

    def _config(self, system: str, variant: Variant, architecture: str, seed: int, base: dict) -> dict[str, Any]:
        config = base
        if variant.config is not None:
            config = read_config_toml(self.path.parent / format_config_path(variant.config, system, str(self.path)))
        if architecture != config.get("architecture"):  # the config's architecture settings belong to another one
            config = {k: v for k, v in config.items() if k != "architecture_config"}
        for changes in (self.changes, self.systems[system]["changes"], variant.changes):
            config = merge_config(config, changes)
        top = {"architecture": architecture, "seed": seed, "method": variant.label}
        if self.profile is not None:
            top["profile"] = self.profile
        return {**config, **top}

    def _cells(self, system: str, architecture: str, seed: int, base: dict) -> list[Cell]:
        def cell(variant: Variant, group: str, **kw: Any) -> Cell:
            config = self._config(system, variant, architecture, seed, base)
            own = self.observed_frames if variant.observed_frames is None else variant.observed_frames
            frames = kw.pop("observed_frames", own)
            kw["candidates"] = self.candidates if variant.candidates is None else variant.candidates
            kw["settings"] = variant.settings
            return Cell(system, architecture, variant.label, group, seed, config, variant.evaluate, frames, **kw)

        main = self.methods[0]
        cells = [cell(m, "method") for m in self.methods]
        if self.baselines:  # one cell evaluates them all, on the zoo of the first method
            settings = self.systems[system]["baseline_settings"]
            variant = Variant(BASELINES_LABEL, main.config, main.changes, BASELINES_LABEL, settings=settings)
            cells.append(cell(variant, "baseline"))
        cells += [cell(main.with_changes(a.label, a.changes, a), "ablation") for a in self.ablations]
        for value in self.sweeps.get("observed_frames", ()):
            cells.append(cell(main, "sweep", observed_frames=value, sweep=("observed_frames", value)))
        for value in self.sweeps.get("zoo_size", ()):
            sized = main.with_changes(main.label, {"zoo": {"size": value}})
            cells.append(cell(sized, "sweep", sweep=("zoo_size", value)))
        return cells


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a table ([{key}] or {key} = {{...}}), got {value!r}")
    return value


def _list_of(data: dict[str, Any], key: str, kind: type, where: str, default: Any = None, positive: bool = False):
    value = data.get(key, default)
    ok = isinstance(value, (list, tuple)) and len(value) > 0
    ok = ok and all(isinstance(v, kind) and not isinstance(v, bool) and (not positive or v > 0) for v in value)
    if not ok:
        what = f"positive {kind.__name__}s" if positive else f"{kind.__name__}s"
        raise ConfigError(f"{where}: {key} must be a non-empty list of {what}, got {value!r}")
    return tuple(value)


def _positive_int(data: dict[str, Any], key: str, where: str) -> int:
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def _check_changes(changes: dict[str, Any], where: str) -> None:
    bad = sorted(set(changes) & set(TOP_LEVEL) - {"profile"})
    if bad:
        raise ConfigError(f"{where}: set cannot change {', '.join(bad)} (the matrix's axes decide them)")
    not_tables = [k for k in changes if k not in TOP_LEVEL and not isinstance(changes[k], dict)]
    if not_tables:
        raise ConfigError(f"{where}: {', '.join(not_tables)} must be tables of settings, e.g. {{ steps = 100 }}")


def _check_label(label: str, where: str) -> None:
    """Labels name the bench's folders (``runs/<system>/<arch>/<method>/``): one that is not a plain
    folder name would write outside the bench folder or hide there."""
    if not label or label.startswith(".") or any(c in "/\\" or not c.isprintable() for c in label):
        raise ConfigError(
            f"{where}: label {label!r} is not a plain folder name (no '/', no leading '.', no control characters)"
        )


def _baseline_settings(entry: dict[str, Any], baselines: tuple[str, ...], where: str) -> dict[str, dict[str, Any]]:
    """An entry's ``baseline_settings``: keyword arguments by baseline name, each a baseline of the
    matrix whose constructor takes them (checked here, so that bad settings stop the bench before it
    trains)."""
    table = _table(entry, "baseline_settings", where)
    for name, settings in table.items():
        if name not in baselines:
            raise ConfigError(f"{where}: baseline_settings for {name!r}, which is not among the baselines")
        if not isinstance(settings, dict):
            raise ConfigError(
                f"{where}: baseline_settings.{name} must be a table of keyword arguments, got {settings!r}"
            )
    _check_settings(table, f"{where}: baseline_settings")
    return table


def _check_settings(settings: dict[str, dict[str, Any]], where: str) -> None:
    """Build each method of ``settings`` (keyword arguments by method name) with them, so that a
    setting a method does not take, or a bad value, stops the bench before it trains."""
    if not settings:
        return
    from weightspace.evaluate.evaluation import methods

    try:
        methods(list(settings), settings=settings)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _methods() -> dict[str, type]:
    registry = default_registry()
    return {name: registry.get("methods", name) for name in registry.names("methods")}


def _variants(table: dict[str, Any], where: str, run_methods: list[str]) -> tuple[Variant, ...]:
    variants = []
    for label, entry in table.items():
        _check_label(label, where)
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}.{label} must be a table, got {entry!r}")
        extra = sorted(set(entry) - set(VARIANT_KEYS))
        if extra:
            raise ConfigError(f"{where}.{label}: unknown key(s) {', '.join(extra)}; keys: {', '.join(VARIANT_KEYS)}")
        evaluate = entry.get("evaluate", RUN_METHOD)
        if evaluate not in run_methods:
            raise ConfigError(
                f"{where}.{label}: evaluate = {evaluate!r}; methods that adapt a run: {', '.join(run_methods)}"
            )
        changes = _table(entry, "set", f"{where}.{label}")
        _check_changes(changes, f"{where}.{label}")
        config = entry.get("config")
        own = {key: _positive_int(entry, key, f"{where}.{label}") for key in EVALUATION_KEYS if key in entry}
        settings = _table(entry, "settings", f"{where}.{label}")
        _check_settings({evaluate: settings} if settings else {}, f"{where}.{label}")
        own["settings"] = settings
        variants.append(Variant(label, None if config is None else str(config), changes, evaluate, **own))
    return tuple(variants)
