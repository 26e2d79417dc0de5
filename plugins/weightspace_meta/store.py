"""A trained context model on disk: ``model.safetensors`` (the shared tensors and the seen
environments' contexts) and ``manifest.json`` (what it was trained with, the file's sha256 and its
result-row fields), in a folder of the zoo it was trained on, named by a hash of those settings.

Rules: the tensors are written first and the manifest last, each atomically, so a folder without a
manifest is an unfinished training, retrained; a folder with one is loaded only if its manifest is
well formed, names the same settings, and its file has the recorded sha256, the model's tensor names
and shapes and finite values; otherwise a :class:`StorageError` names the problem (a stored model is
never silently replaced by a new one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from weightspace.errors import StorageError
from weightspace.pipeline.config import content_hash
from weightspace.storage import check_keys, confined, load_tensors, read_json, save_tensors, write_json
from weightspace.zoo.zoo import sha256
from weightspace_meta.context import ContextModel

FORMAT_VERSION = 1
CONTEXTS = "contexts"
"""The tensor holding the seen environments' contexts ``[E, d]`` (the rest is the model's state)."""
MANIFEST_KEYS: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "settings": (dict,),
    "file": (str,),
    "sha256": (str,),
    "fields": (dict,),
}


def settings_key(settings: dict[str, Any]) -> str:
    """A short hash of ``settings``, naming the folder a model trained with them is stored in."""
    return content_hash(settings)


def save_context_model(
    folder: Path, model: ContextModel, contexts: torch.Tensor, settings: dict[str, Any], fields: dict[str, Any]
) -> None:
    """Store a trained ``model`` and its ``contexts`` with the ``settings`` and row ``fields``."""
    file = folder / "model.safetensors"
    save_tensors(file, {**model.state_dict(), CONTEXTS: contexts})
    manifest = {
        "format_version": FORMAT_VERSION,
        "settings": settings,
        "file": file.name,
        "sha256": sha256(file),
        "fields": fields,
    }
    write_json(folder / "manifest.json", manifest)


def load_context_model(
    folder: Path, model: ContextModel, settings: dict[str, Any]
) -> tuple[torch.Tensor, dict[str, Any]] | None:
    """Load the model stored in ``folder`` into ``model`` and return its contexts and row fields;
    None when nothing finished is stored there."""
    where = folder / "manifest.json"
    if not where.is_file():
        return None
    manifest = read_json(where)
    check_keys(str(where), "", manifest, MANIFEST_KEYS)
    if manifest["format_version"] != FORMAT_VERSION:
        raise StorageError(f"{where}: format_version {manifest['format_version']} is not {FORMAT_VERSION}")
    if manifest["settings"] != settings:
        raise StorageError(f"{where} was trained with other settings than its folder's name says; remove {folder}")
    file = confined(folder, manifest["file"], f"{where}: file")
    if not file.is_file() or sha256(file) != manifest["sha256"]:
        raise StorageError(f"{file} is missing or does not match the sha256 in {where}")
    tensors = load_tensors(file)[0]
    state = model.state_dict()
    if set(tensors) != {*state, CONTEXTS}:
        raise StorageError(f"{file} does not hold this model's tensors {sorted({*state, CONTEXTS})}")
    contexts = tensors.pop(CONTEXTS)
    if contexts.dim() != 2 or contexts.shape[1] != model.context_dim:
        raise StorageError(f"{file}: contexts must be [environments, {model.context_dim}], not {list(contexts.shape)}")
    bad = [k for k, v in tensors.items() if v.shape != state[k].shape or v.dtype != state[k].dtype]
    if bad:
        raise StorageError(f"{file}: tensor(s) {', '.join(sorted(bad))} differ in shape or dtype from the model's")
    if not all(torch.isfinite(v).all() for v in (*tensors.values(), contexts)):
        raise StorageError(f"{file} holds non-finite values")
    model.load_state_dict(tensors)
    return contexts, manifest["fields"]
