import json
import types

import pytest

from weightspace import hookspecs
from weightspace.cli import main
from weightspace.errors import PluginError
from weightspace.hookspecs import KINDS, Lazy, hookimpl
from weightspace.registry import BrokenPlugin, PluginWarning, Registry, default_registry


def _plugin(name, *classes, kind="architectures"):
    module = types.ModuleType(name)
    setattr(module, f"weightspace_{kind}", hookimpl(lambda: list(classes)))
    return module


class Alpha:
    name = "alpha"


class AlsoAlpha:
    name = "alpha"


def test_built_in_plugins_come_from_entry_points_with_their_distribution():
    entries = default_registry().entries("architectures")
    assert entries["fno"].source == "neuralop (weightspace 0.1.0)"
    assert entries["mlp-node"].source.startswith("mlp-node (weightspace")
    assert {"architectures", "systems", "encoders", "generators", "prompters"} <= set(KINDS)
    assert all(callable(getattr(hookspecs, f"weightspace_{kind}", None)) for kind in KINDS)


def test_registering_a_plugin_at_run_time():
    registry = Registry(load_entrypoints=False, plugins=[_plugin("mine", Alpha)])
    assert registry.names("architectures") == ["alpha"]
    assert registry.get("architectures", "alpha") is Alpha
    assert registry.entries("architectures")["alpha"].source == "mine"
    assert registry.names("systems") == []


def test_unknown_name_lists_what_is_registered():
    with pytest.raises(PluginError, match="unknown architecture 'fnoo'; registered architectures: fno, mlp-node"):
        default_registry().get("architectures", "fnoo")
    with pytest.raises(PluginError, match="unknown system 'x'; registered systems: none"):
        Registry(load_entrypoints=False).get("systems", "x")
    with pytest.raises(PluginError, match="unknown plugin kind 'widgets'"):
        default_registry().names("widgets")


def test_duplicate_names_name_both_plugins():
    registry = Registry(load_entrypoints=False, plugins=[_plugin("first", Alpha), _plugin("second", AlsoAlpha)])
    with pytest.raises(PluginError, match="'alpha' is registered twice: by first and by second"):
        registry.names("architectures")


def test_entries_need_a_name():
    registry = Registry(load_entrypoints=False, plugins=[_plugin("nameless", object)])
    with pytest.raises(PluginError, match="without a string 'name'"):
        registry.names("architectures")


def test_registering_invalidates_the_cache():
    registry = Registry(load_entrypoints=False)
    assert registry.names("architectures") == []
    registry.register(_plugin("late", Alpha))
    assert registry.names("architectures") == ["alpha"]


def test_lazy_entries_import_on_first_use_and_must_match_their_name():
    lazy = Lazy("counter", "collections:Counter")
    registry = Registry(load_entrypoints=False, plugins=[_plugin("mine", lazy)])
    assert registry.names("architectures") == ["counter"]
    with pytest.raises(PluginError, match="collections:Counter is named None, not 'counter'"):
        registry.get("architectures", "counter")
    broken = Registry(load_entrypoints=False, plugins=[_plugin("broken", Lazy("x", "no_such_module_xyz:X"))])
    assert broken.names("architectures") == ["x"]
    with pytest.raises(PluginError, match="architectures 'x' of plugin broken: cannot import no_such_module_xyz:X"):
        broken.get("architectures", "x")


def test_built_in_entries_resolve_to_classes_of_their_name():
    registry = default_registry()
    for kind in KINDS:
        for name in registry.names(kind):
            assert registry.get(kind, name).name == name


def _install(site, dist, version, entry_points, modules):
    """A distribution as pip leaves it in ``site``: a dist-info with METADATA and entry_points.txt,
    and its modules beside it."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[weightspace]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)


GOOD = """
from weightspace.hookspecs import hookimpl


class Gamma:
    name = "gamma"


@hookimpl
def weightspace_architectures():
    return [Gamma]
"""

RAISES_IN_HOOK = """
from weightspace.hookspecs import hookimpl


@hookimpl
def weightspace_systems():
    raise RuntimeError("the hook itself is broken")
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Third-party distributions on sys.path: one whose module does not import, one whose hook raises,
    one that works; the process-wide registry sees them until the test ends."""
    _install(tmp_path, "ws-broken", "1.2", {"broken": "ws_broken_module"}, {"ws_broken_module": "import no_such_xyz\n"})
    _install(tmp_path, "ws-raises", "0.3", {"raises": "ws_raises_module"}, {"ws_raises_module": RAISES_IN_HOOK})
    _install(tmp_path, "ws-good", "2.0", {"good": "ws_good_module"}, {"ws_good_module": GOOD})
    monkeypatch.syspath_prepend(str(tmp_path))
    default_registry.cache_clear()
    yield tmp_path
    default_registry.cache_clear()


def test_an_entry_point_that_fails_to_load_is_reported_and_skipped(site):
    with pytest.warns(PluginWarning, match="entry point 'broken' of ws-broken 1.2: ModuleNotFoundError"):
        registry = Registry()
    assert registry.broken == [
        BrokenPlugin("broken", "ws-broken 1.2", "ModuleNotFoundError: No module named 'no_such_xyz'")
    ]
    with pytest.warns(PluginWarning, match="'raises' of ws-raises 0.3"):  # listing calls every hook
        assert registry.entries("architectures")["gamma"].source == "good (ws-good 2.0)"
    assert {"fno", "mlp-node", "gamma"} <= set(registry.names("architectures"))
    with pytest.raises(
        PluginError, match="unknown architecture 'toy'.*failed to load: entry point 'broken' of ws-broken"
    ):
        registry.get("architectures", "toy")


def test_a_plugin_whose_hook_raises_is_skipped_when_listing(site):
    with pytest.warns(PluginWarning):
        registry = Registry()
    with pytest.warns(
        PluginWarning, match="entry point 'raises' of ws-raises 0.3: RuntimeError: the hook itself is broken"
    ):
        systems = registry.names("systems")
    assert {"lotka-volterra", "kolmogorov"} <= set(systems)
    assert [b.entry_point for b in registry.broken] == ["broken", "raises"]


def test_plugins_command_lists_the_others_and_the_broken_ones(site, capsys):
    with pytest.warns(PluginWarning):
        assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "gamma" in data["architectures"] and "lotka-volterra" in data["systems"]
    assert [(b["entry_point"], b["distribution"]) for b in data["broken"]] == [
        ("broken", "ws-broken 1.2"),
        ("raises", "ws-raises 0.3"),
    ]
    assert "No module named 'no_such_xyz'" in data["broken"][0]["error"]
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "broken plugins" in out and "ws-broken 1.2" in out and "good (ws-good 2.0)" in out


def test_plugins_json_has_no_broken_key_when_all_load(capsys):
    assert main(["plugins", "--json"]) == 0
    assert "broken" not in json.loads(capsys.readouterr().out)


def test_a_hook_function_without_hookimpl_is_an_error_naming_it():
    module = types.ModuleType("forgetful")
    module.weightspace_systems = lambda: [Alpha]  # no @hookimpl: pluggy would ignore it silently
    with pytest.raises(PluginError, match="plugin forgetful: weightspace_systems is not marked @hookimpl"):
        Registry(load_entrypoints=False, plugins=[module])
    registry = Registry(load_entrypoints=False)
    with pytest.raises(PluginError, match="plugin late: weightspace_systems is not marked"):
        registry.register(module, name="late")
    assert registry.names("systems") == []  # nothing half-registered


def test_a_hookimpl_for_an_unknown_hook_is_an_error_naming_it():
    module = types.ModuleType("typo")
    module.weightspace_architecture = hookimpl(lambda: [Alpha])  # singular: not a weightspace hook
    with pytest.raises(PluginError, match="plugin typo: unknown hook 'weightspace_architecture'.*weightspace_systems"):
        Registry(load_entrypoints=False, plugins=[module])
    registry = Registry(load_entrypoints=False)
    with pytest.raises(PluginError):
        registry.register(module)
    registry.register(_plugin("fine", Alpha))  # the failed registration left nothing behind
    assert registry.names("architectures") == ["alpha"]


def test_an_unmarked_hook_in_an_installed_plugin_makes_it_broken(tmp_path, monkeypatch):
    source = "class Delta:\n    name = 'delta'\n\n\ndef weightspace_architectures():\n    return [Delta]\n"
    _install(tmp_path, "ws-unmarked", "0.1", {"unmarked": "ws_unmarked_module"}, {"ws_unmarked_module": source})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match="'unmarked' of ws-unmarked 0.1: PluginError: .*not marked @hookimpl"):
        registry = Registry()
    assert "delta" not in registry.names("architectures") and "fno" in registry.names("architectures")
