"""The plugin registry: a pluggy PluginManager that finds components by kind and name.

Plugins are discovered through the ``weightspace`` entry-point group (built-in ones included) and
can also be registered at run time (for tests, notebooks). Asking for a name that is not there, or
two plugins claiming the same name, is an error that lists what is registered and by whom.

An entry point that fails to load (its module raises on import, or it breaks the hook contract) is
skipped with a :class:`PluginWarning` and kept in :attr:`Registry.broken`: one broken third-party
package must not take every command down with it, and ``weightspace plugins`` names it. A plugin
that defines ``weightspace_<kind>`` without marking it ``@hookimpl`` would register nothing, without
a word from pluggy, so registering one is an error that names the function.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pluggy

from weightspace import hookspecs
from weightspace.errors import PluginError
from weightspace.hookspecs import KINDS, PROJECT, Lazy


@dataclass(frozen=True)
class PluginEntry:
    """One registered component: its kind, name, class and where it came from."""

    kind: str
    name: str
    ref: type | Lazy = field(repr=False)
    """The class, or a :class:`Lazy` reference imported by the first use of :attr:`cls`."""
    source: str
    """The registering plugin, with its distribution and version when installed from one."""

    @property
    def cls(self) -> type:
        if not isinstance(self.ref, Lazy):
            return self.ref
        try:
            cls = self.ref.load()
        except Exception as exc:  # a broken plugin module must not look like our bug
            what = f"{self.kind} {self.name!r} of plugin {self.source}"
            raise PluginError(f"{what}: cannot import {self.ref.target}: {exc}") from exc
        if getattr(cls, "name", None) != self.name:
            raise PluginError(
                f"{self.kind} {self.name!r} of plugin {self.source}: {self.ref.target} is named "
                f"{getattr(cls, 'name', None)!r}, not {self.name!r}"
            )
        object.__setattr__(self, "ref", cls)
        return cls


class PluginWarning(UserWarning):
    """An installed plugin failed to load and was skipped (the others work)."""


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that was skipped: its entry point failed to load, or one of its hooks raised."""

    entry_point: str
    """The entry point's name (for a plugin registered at run time, the name it was registered as)."""
    distribution: str
    """The installed distribution that declares it, with its version (``"name 1.0"``)."""
    error: str
    """The error, on one line."""

    def describe(self) -> str:
        return f"entry point {self.entry_point!r} of {self.distribution}: {self.error}"


class Registry:
    """Components by kind and name. ``Registry()`` loads every installed plugin."""

    def __init__(self, *, load_entrypoints: bool = True, plugins: Iterable[object] = ()) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._distributions: dict[int, str] = {}
        self.broken: list[BrokenPlugin] = []
        """Plugins skipped because they failed to load (or, once components are listed, a hook raised)."""
        self._entries: dict[str, dict[str, PluginEntry]] | None = None
        if load_entrypoints:
            self._load_entrypoints()
        for plugin in plugins:
            self.register(plugin)

    def _load_entrypoints(self) -> None:
        """Register every entry point of the group; those that fail are recorded, warned about, skipped."""
        for ep in importlib.metadata.entry_points(group=PROJECT):
            if self._pm.has_plugin(ep.name) or self._pm.is_blocked(ep.name):
                continue  # the same plugin found twice on sys.path: the first one wins, as in pluggy
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an unknown distribution"
            try:
                self.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken third-party package must not take the others down
                self._skip(ep.name, dist, exc)
                continue
            self._distributions[id(self._pm.get_plugin(ep.name))] = dist

    def _skip(self, name: str, distribution: str, exc: Exception) -> None:
        broken = BrokenPlugin(name, distribution, " ".join(f"{type(exc).__name__}: {exc}".split()))
        self.broken.append(broken)
        warnings.warn(f"skipped plugin {broken.describe()}", PluginWarning, stacklevel=4)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a module or object with ``hookimpl`` functions (what an entry point does).

        A function named like a hook but not marked ``@hookimpl`` is an error: pluggy would ignore
        it and the plugin would silently register nothing of that kind.
        """
        label = name or getattr(plugin, "__name__", None) or repr(plugin)
        for kind in KINDS:
            hook = f"weightspace_{kind}"
            if callable(getattr(plugin, hook, None)) and self._pm.parse_hookimpl_opts(plugin, hook) is None:
                raise PluginError(
                    f"plugin {label}: {hook} is not marked @hookimpl (from weightspace.hookspecs import hookimpl), "
                    f"so it would register no {kind}"
                )
        try:
            self._pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:  # a bad hook signature, a name taken twice
            raise PluginError(f"plugin {label} cannot be registered: {exc}") from None
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:  # a @hookimpl for a hook weightspace does not have
            self._pm.unregister(plugin)
            raise PluginError(f"plugin {label}: {exc}; hooks: {', '.join(f'weightspace_{k}' for k in KINDS)}") from None
        self._entries = None

    # -- lookup ---------------------------------------------------------------------------------
    def entries(self, kind: str) -> dict[str, PluginEntry]:
        """``{name: entry}`` of one kind."""
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
        if self._entries is None:
            self._entries = {k: self._collect(k) for k in KINDS}
        return self._entries[kind]

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries(kind))

    def get(self, kind: str, name: str) -> type:
        """The class registered as ``name`` of ``kind``."""
        entries = self.entries(kind)
        if name not in entries:
            singular = kind.removesuffix("s")
            known = ", ".join(sorted(entries)) or "none"
            skipped = "; ".join(b.describe() for b in self.broken)
            hint = f"; plugins that failed to load: {skipped}" if skipped else ""
            raise PluginError(f"unknown {singular} {name!r}; registered {kind}: {known}{hint}")
        return entries[name].cls

    def architecture(self, name: str, overrides: Mapping[str, Any] | None = None):
        """An :class:`ArchitectureAdapter` for ``name`` with its default config plus ``overrides``."""
        return self.get("architectures", name).from_overrides(overrides)

    def system(self, name: str, profile: str = "quick", overrides: Mapping[str, Any] | None = None):
        """A :class:`System` for ``name`` with a profile's settings plus ``overrides``."""
        return self.get("systems", name)(profile, overrides)

    # -- collection -----------------------------------------------------------------------------
    def _sources(self) -> dict[int, str]:
        return {
            id(plugin): f"{self._pm.get_name(plugin)} ({self._distributions[id(plugin)]})"
            if id(plugin) in self._distributions
            else str(self._pm.get_name(plugin))
            for plugin in self._pm.get_plugins()
        }

    def _collect(self, kind: str) -> dict[str, PluginEntry]:
        sources = self._sources()
        hook = getattr(self._pm.hook, f"weightspace_{kind}")
        found: dict[str, PluginEntry] = {}
        # call each implementation on its own so that every name can be traced to its plugin
        for impl in hook.get_hookimpls():  # registration order
            source = sources.get(id(impl.plugin), impl.plugin_name)
            try:
                refs = list(impl.function() or [])
            except Exception as exc:  # a plugin whose hook raises is as broken as one that fails to import
                dist = self._distributions.get(id(impl.plugin), "no distribution (registered at run time)")
                self._skip(impl.plugin_name, dist, exc)
                continue
            for ref in refs:
                name = getattr(ref, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {source} returned a {kind} entry without a string 'name': {ref!r}")
                if name in found:
                    raise PluginError(
                        f"{kind} name {name!r} is registered twice: by {found[name].source} and by {source}; "
                        f"registered {kind}: {', '.join(sorted(found))}"
                    )
                found[name] = PluginEntry(kind, name, ref, source)
        return found


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The process-wide registry of installed plugins (loaded once)."""
    return Registry()
