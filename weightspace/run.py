"""Deprecated: the run moved to :mod:`weightspace.pipeline` (config, stages and the loaded run)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    "RunConfig": "config",
    "SECTIONS": "config",
    "TOP_LEVEL": "config",
    "read_config_toml": "config",
    "merge_config": "config",
    "content_hash": "config",
    "Run": "run",
    "STAGES": "run",
    "RunPlan": "stages",
    "plan_run": "stages",
    "stage_done": "stages",
    "build_stage": "stages",
    "link_run": "stages",
    "train_run": "stages",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'weightspace.run' has no attribute {name!r}")
    module = f"weightspace.pipeline.{_MOVED[name]}"
    warnings.warn(f"weightspace.run.{name} moved to {module}.{name}", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), name)
