"""The package by role: moved modules stay importable from their old paths, and no layer imports
one above it (read from the import statements, so a violation fails here before it becomes a cycle)."""

import ast
import importlib
import re
import warnings
from pathlib import Path

import pytest

import weightspace

PACKAGE = Path(weightspace.__file__).parent

# old path -> (new path, a name to look up through the shim)
MOVED = {
    "weightspace.dataset": ("weightspace.data.dataset", "load_dataset"),
    "weightspace.simulation": ("weightspace.data.simulation", "build_dataset"),
    "weightspace.trajectories": ("weightspace.data.trajectories", "ChannelScale"),
    "weightspace.gridded_import": ("weightspace.data.gridded", "import_gridded"),
    "weightspace.trainer": ("weightspace.zoo.trainer", "train_experts"),
    "weightspace.evaluation": ("weightspace.evaluate.evaluation", "evaluate"),
    "weightspace.adaptation": ("weightspace.evaluate.adaptation", "observed_frames"),
    "weightspace.memorization": ("weightspace.evaluate.memorization", "memorization"),
    "weightspace.distill": ("weightspace.evaluate.distill", "distill_vector_field"),
    "weightspace.encoding": ("weightspace.pipeline.encoding", "WeightCodec"),
    "weightspace.generation": ("weightspace.pipeline.generation", "generate_experts"),
    "weightspace.run": ("weightspace.pipeline.run", "Run"),
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_gives_the_moved_object(old):
    new, name = MOVED[old]
    shim = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old}.{name} moved to {new}.{name}")) as record:
        value = getattr(shim, name)
    assert value is getattr(importlib.import_module(new), name)
    assert record[0].filename == __file__  # the warning points at the importer, not the shim
    with pytest.raises(AttributeError, match="no_such_name"):
        shim.no_such_name  # noqa: B018


def test_the_zoo_package_keeps_the_zoo_module_names_without_a_warning():
    import weightspace.zoo.zoo as module

    names = ("Zoo", "ZooPlan", "ZooSettings", "ZooProgress", "TrainingError", "PROFILES", "build_zoo", "plan_zoo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        package = importlib.import_module("weightspace.zoo")
        for name in (*names, "train_chunk", "sha256"):
            assert getattr(package, name) is getattr(module, name)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, ``from a import b`` counted as ``a`` and ``a.b`` (b may be a
    submodule), relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _modules(*under: str) -> list[Path]:
    return sorted(p for folder in under for p in (PACKAGE / folder).rglob("*.py"))


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_core_imports_no_plugin():
    """Plugins build on weightspace, never the reverse; only the command line and the bench, which
    present what is installed, may name one."""
    offenders = {
        _module_name(path): sorted(name for name in _imports(path) if name.startswith("weightspace_"))
        for path in _modules(".")
        if not _within(_module_name(path), ("weightspace.cli", "weightspace.bench"))
    }
    assert {module: names for module, names in offenders.items() if names} == {}


@pytest.mark.parametrize("layer", ["nn", "data"])
def test_a_lower_layer_imports_nothing_above_it(layer):
    above = ("weightspace.zoo", "weightspace.pipeline", "weightspace.evaluate", "weightspace.bench", "weightspace.cli")
    offenders = {_module_name(path): sorted(n for n in _imports(path) if _within(n, above)) for path in _modules(layer)}
    assert {module: names for module, names in offenders.items() if names} == {}
