"""Safetensors files written atomically, read with errors that name the file and the problem.

Weights are never pickled: a safetensors file holds only tensors plus string metadata, so opening
an untrusted file cannot run code. Writes go to a temporary file in the same folder and are renamed
into place, so an interrupted write never leaves a half-written file under the real name.

Commands write into output folders through :func:`claim_output`: it refuses a user's non-empty
folder (their same-named files would be replaced), marks the folders weightspace creates so that a
rerun resumes there, and locks the folder so that two commands never write into it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightspace.errors import ConfigError, StorageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    import torch

# torch and safetensors are imported by the tensor functions alone: output folders and JSON are
# written by commands (and their `--help`) that must start without torch.


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    mode = tmp.stat().st_mode & 0o777  # 0o666 less the umask
    try:
        yield tmp
        os.chmod(tmp, mode)  # some writers (safetensors) replace the file with one of mode 0o600
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _new_temp(path: Path) -> Path:
    """A new empty file beside ``path``, created with mode 0o666 so that the umask applies as it
    would to a plain ``open`` (``mkstemp`` makes every output 0o600 whatever the umask)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:  # another writer's temporary file: draw another name
            continue
        return tmp


def read_json(path: str | os.PathLike, error: type[Exception] = StorageError) -> Any:
    """The JSON value in ``path``. A file that is not UTF-8 text or not JSON raises ``error`` naming
    it, in one line: every file weightspace reads back may have been damaged or edited by hand."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text (JSON must be): {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON: {exc}") from None


def read_toml(path: str | os.PathLike, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """The TOML table in ``path``, refused like :func:`read_json` when it is not UTF-8 or not TOML."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text (TOML must be): {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path} is not valid TOML: {exc}") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically: readers see the old file or the new one, never a part."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=1))


_KIND = {dict: "a record", list: "a list", str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def check_keys(where: str, name: str, record: Any, keys: Mapping[str, tuple[type, ...]]) -> None:
    """Raise a :class:`StorageError` naming ``name`` (``environments[1].file``; "" for the whole
    manifest) unless ``record`` is a JSON object holding ``keys`` with their types (``type(None)``
    for null): the code reading a manifest indexes these without checks."""
    if not isinstance(record, dict):
        raise StorageError(f"{where}: {name or 'the manifest'} must be a JSON object, got {json_excerpt(record)}")
    for key, types in keys.items():
        label = f"{name}.{key}" if name else key
        kinds = [t for t in types if not (t is int and float in types)]  # an int is a number too
        expected = " or ".join("null" if t is type(None) else _KIND[t] for t in kinds)
        if key not in record:
            raise StorageError(f"{where}: missing key {label!r}; expected {expected}")
        value = record[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise StorageError(f"{where}: {label!r} must be {expected}, got {json_excerpt(value)}")


def json_excerpt(value: Any) -> str:
    """``value`` as JSON, cut to 40 characters: what an error message quotes of a bad value."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


MARKER = ".weightspace"
"""Written into every output folder weightspace creates or claims: JSON naming the kind of output."""
LOCK = ".weightspace.lock"
"""Locked (``flock``) by the command writing into an output folder; holds that command's PID."""


LEGACY = {"zoo": "manifest.json", "run": "run.json", "bench": "cells", "expert": "expert.safetensors", "cache": "zoo-"}
"""What a folder of each kind held (an entry starting so) before weightspace marked its folders:
such a folder resumes."""


@contextlib.contextmanager
def claim_output(folder: str | os.PathLike, kind: str, force: bool = False) -> Iterator[Path]:
    """Hold output folder ``folder`` for a command writing a ``kind`` of output (``zoo``, ``run``, ...).

    The folder is created when missing. An existing one is accepted when it is empty or weightspace
    created it for the same kind of output (a rerun resumes there); any other non-empty folder is
    refused unless ``force``, since its same-named files would be replaced. The folder stays locked
    until the block ends, so a second command writing there fails at once instead of mixing files.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise StorageError(f"{path} is a file, not a folder: choose another output folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        entries = set(os.listdir(path)) - {LOCK}
    except OSError as exc:
        raise StorageError(f"cannot create or read output folder {path}: {exc.strerror or exc}") from None
    marked = _marked_kind(path) if MARKER in entries else None
    legacy = kind in LEGACY and any(entry.startswith(LEGACY[kind]) for entry in entries)
    owner = kind if marked is None and legacy else marked  # written before folders were marked
    if entries and owner != kind and not force:
        if owner is not None:
            raise StorageError(f"{path} holds weightspace {owner} output, not {kind}: choose another output folder")
        raise StorageError(
            f"{path} is not empty and weightspace did not create it: choose another output folder, "
            "or pass --force to write into it (same-named files are replaced)"
        )
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        raise StorageError(f"cannot write in output folder {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StorageError(f"{path} is in use by PID {pid}: wait for it, or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        if marked != kind:
            write_json(path / MARKER, {"kind": kind})
        yield path
    finally:
        os.close(fd)  # releases the lock; the file stays, since removing it races with the next writer


def _marked_kind(folder: Path) -> str | None:
    """The kind of output weightspace recorded in ``folder``'s marker; None if it is unreadable."""
    try:
        kind = json.loads((folder / MARKER).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def confined(folder: str | os.PathLike, relative: Any, what: str) -> Path:
    """``folder / relative``, refused with a :class:`StorageError` naming ``what`` unless it stays
    inside ``folder``. Paths read from a file (a manifest's shard names) are data, not trusted: a
    ``..``, an absolute path or a symlink must not make weightspace read or checksum files elsewhere."""
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute():
        raise StorageError(f"{what} must be a relative path inside {folder}, got {relative!r}")
    try:
        root = Path(folder).resolve()
        target = (root / relative).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise StorageError(f"{what} = {relative!r} cannot be resolved inside {folder}: {exc}") from None
    if target == root or not target.is_relative_to(root):
        raise StorageError(f"{what} = {relative!r} points outside {folder}; expected a file inside it")
    return Path(folder) / relative


def save_tensors(
    path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Save tensors (complex64 included) and string metadata to a safetensors file, atomically."""
    bad = [k for k, v in (metadata or {}).items() if not isinstance(v, str)]
    if bad:
        raise StorageError(f"safetensors metadata must be strings; not: {', '.join(bad)} (JSON-encode them)")
    import torch
    from safetensors.torch import save_file

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
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise StorageError(f"no such file: {path}")
    try:
        with safe_open(path, framework="pt", device=str(device)) as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
            return tensors, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise StorageError(f"{path} is not a readable safetensors file: {exc}") from None
