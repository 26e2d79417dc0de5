"""A run config: which system, architecture, profile and seed, the method's label, and the encoder,
generator and prompter with their settings (``configs/*.toml``).

A config can extend another (``extends = "base.toml"``, a path relative to it): its sections are
merged into the base's, key by key, except that a section naming another component replaces the
base's section (its options belong to the old component).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightspace.config import make_config, require_at_most
from weightspace.errors import ConfigError
from weightspace.storage import read_toml

SECTIONS = ("system_settings", "architecture_config", "zoo", "encoder", "encoder_training")
SECTIONS += ("generator", "prompter", "generator_training")
TOP_LEVEL = ("system", "architecture", "profile", "seed", "method")
"""The run config's keys outside any section."""
MAX_SEED = 2**63 - 1
"""The largest seed torch and numpy accept (a TOML integer's largest too)."""


@dataclass(frozen=True)
class RunConfig:
    system: str
    architecture: str
    profile: str = "quick"
    seed: int = 0
    method: str = "dynadiff"
    """The label of the run's result rows (e.g. ``flat-vae`` for a run with that encoder)."""
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # torch and numpy take 64-bit seeds; a negative one would be a different seed on each
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        require_at_most(self, MAX_SEED, "seed")

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(read_config_toml(Path(path), ()), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run config") -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a table of keys and sections, got {type(data).__name__}")
        data = dict(data)
        missing = [k for k in ("system", "architecture") if k not in data]
        if missing:
            raise ConfigError(f"{where} lacks {', '.join(missing)}")
        top = {k: data.pop(k) for k in TOP_LEVEL if k in data}
        for key, section in (("system", "system_settings"), ("architecture", "architecture_config")):
            if isinstance(top[key], dict):
                raise ConfigError(f"{where}: {key} is the {key}'s name; its settings go in [{section}]")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
        for name in SECTIONS:
            if not isinstance(data.get(name, {}), dict):
                raise ConfigError(f"{where}: [{name}] must be a table, got {type(data[name]).__name__} {data[name]!r}")
        sections = {s: dict(data.get(s, {})) for s in SECTIONS}
        for kind, default in (("encoder", "graph-vae"), ("generator", "dit-diffusion"), ("prompter", "dynamics")):
            sections[kind].setdefault("name", default)
            if not isinstance(sections[kind]["name"], str):
                raise ConfigError(f"{where}: [{kind}] name must be a registered {kind}'s name (a string)")
        return dataclasses.replace(make_config(cls, top, owner=where), sections=sections)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in TOP_LEVEL}


def read_config_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A run config's TOML with the configs it extends merged in (see the module docstring)."""
    if not path.is_file():
        raise ConfigError(f"no such run config: {path}")
    if path.resolve() in chain:
        raise ConfigError(f"{path} extends itself through {' -> '.join(map(str, chain))}")
    data = read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must be the path of a run config (a string), got {parent!r}")
    return merge_config(read_config_toml(path.parent / parent, (*chain, path.resolve())), data)


def merge_config(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` merged into the config dict ``base``: sections key by key, except that a section
    naming another component replaces the base's section (its options belong to the old component)."""
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and value.get("name", old.get("name")) == old.get("name"):
            value = {**old, **value}
        merged[key] = value
    return merged


def format_config_path(template: str, system: str, where: str) -> str:
    """A run config path template (a bench matrix's) with ``{system}`` replaced by the system's label.

    ``{system}`` is the only placeholder: any other (a typo such as ``{sistem}``, a positional ``{}``)
    is named in the error rather than surfacing as str.format's KeyError or IndexError."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"{where}: bad config path {template!r}: {exc}") from None
    bad = sorted({f for f in fields if f != "system"})
    if bad:
        names = ", ".join("{" + f + "}" for f in bad)
        raise ConfigError(f"{where}: config path {template!r} has placeholder(s) {names}; only {{system}} is replaced")
    return template.format(system=system)


def content_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]
