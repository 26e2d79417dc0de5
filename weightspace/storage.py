"""Safetensors files written atomically, read with errors that name the file and the problem.

Weights are never pickled: a safetensors file holds only tensors plus string metadata, so opening
an untrusted file cannot run code. Writes go to a temporary file in the same folder and are renamed
into place, so an interrupted write never leaves a half-written file under the real name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from weightspace.errors import StorageError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically: readers see the old file or the new one, never a part."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=1))


def save_tensors(
    path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Save tensors (complex64 included) and string metadata to a safetensors file, atomically."""
    bad = [k for k, v in (metadata or {}).items() if not isinstance(v, str)]
    if bad:
        raise StorageError(f"safetensors metadata must be strings; not: {', '.join(bad)} (JSON-encode them)")
    not_tensors = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise StorageError(f"only tensors can be saved; not: {', '.join(not_tensors)}")
    # safetensors refuses shared or non-contiguous storage: store independent contiguous copies
    owned = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(owned, tmp, metadata=dict(metadata) if metadata else None)


def load_tensors(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"no such file: {path}")
    try:
        with safe_open(path, framework="pt", device=str(device)) as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
            return tensors, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise StorageError(f"{path} is not a readable safetensors file: {exc}") from None
