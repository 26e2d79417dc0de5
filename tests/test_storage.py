import pytest
import torch

from weightspace.errors import StorageError
from weightspace.storage import load_tensors, save_tensors


def test_round_trip_with_complex_weights_and_metadata(tmp_path):
    tensors = {"w": torch.randn(3, 4, dtype=torch.complex64), "b": torch.arange(5.0)[::2]}  # non-contiguous
    save_tensors(tmp_path / "sub" / "x.safetensors", tensors, {"architecture": "fno"})
    back, meta = load_tensors(tmp_path / "sub" / "x.safetensors")
    assert torch.equal(back["w"], tensors["w"]) and torch.equal(back["b"], tensors["b"])
    assert meta == {"architecture": "fno"}
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.safetensors"]  # no temporary left behind


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.safetensors"
    save_tensors(path, {"a": torch.ones(2)})
    with pytest.raises(StorageError, match="metadata must be strings; not: n"):
        save_tensors(path, {"a": torch.zeros(2)}, {"n": 3})
    with pytest.raises(StorageError, match="only tensors can be saved; not: a"):
        save_tensors(path, {"a": "not a tensor"})


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import safetensors.torch

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    path = tmp_path / "x.safetensors"
    save_tensors(path, {"a": torch.ones(2)})
    monkeypatch.setattr(safetensors.torch, "save_file", crash)  # storage imports it when saving
    with pytest.raises(KeyboardInterrupt):
        save_tensors(path, {"a": torch.zeros(2)})
    assert torch.equal(load_tensors(path)[0]["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_missing_and_corrupt_files_name_the_problem(tmp_path):
    with pytest.raises(StorageError, match="no such file"):
        load_tensors(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(StorageError, match="bad.safetensors is not a readable safetensors file"):
        load_tensors(bad)
