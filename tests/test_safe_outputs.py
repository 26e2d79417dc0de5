"""Safe outputs: commands refuse a user's non-empty folder, resume in their own, lock the folder they
write, respect the umask, keep matrix labels inside the bench folder, and a killed bench leaves no
worker behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from weightspace.bench.matrix import Matrix
from weightspace.cli import main
from weightspace.errors import ConfigError, StorageError
from weightspace.storage import LOCK, MARKER, claim_output, save_tensors, write_text

from .conftest import TINY_RUN

SIMULATE = ["simulate", "lotka-volterra", "--set", "n_b=2", "--set", "n_d=2", "--set", "n_seen=2"]
SIMULATE += ["--set", "n_train=1", "--set", "n_test=1", "--set", "n_frames=5", "--device", "cpu"]


def simulate(capsys, out: Path, *extra: str) -> tuple[int, str]:
    code = main([*SIMULATE, "--out", str(out), *extra])
    return code, capsys.readouterr().err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder of the user's, holding a file named like simulate's output."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "lotka-volterra-quick.h5").write_bytes(b"my own data")
    (folder / "notes.md").write_text("keep me")
    return folder


def test_a_non_empty_user_folder_is_refused_and_left_as_it_was(capsys, user_folder):
    before = snapshot(user_folder)
    code, err = simulate(capsys, user_folder)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {user_folder} is not empty")
    assert "--force" in err
    assert snapshot(user_folder) == before  # byte for byte, and no marker or lock file added


def test_force_writes_into_a_user_folder(capsys, user_folder):
    code, _ = simulate(capsys, user_folder, "--force")
    assert code == 0
    assert (user_folder / "lotka-volterra-quick.h5").read_bytes() != b"my own data"
    assert (user_folder / "notes.md").read_text() == "keep me" and (user_folder / MARKER).is_file()


def test_a_rerun_resumes_in_its_own_folder_and_other_kinds_are_refused(capsys, tmp_path):
    out = tmp_path / "data"
    assert simulate(capsys, out)[0] == 0
    assert simulate(capsys, out)[0] == 0  # the folder weightspace created: accepted again
    empty = tmp_path / "empty"
    empty.mkdir()
    assert simulate(capsys, empty)[0] == 0  # an empty existing folder is accepted
    with pytest.raises(StorageError, match="holds weightspace dataset output, not zoo"), claim_output(out, "zoo"):
        pass


def test_out_that_is_a_file_or_cannot_be_created_is_one_line(capsys, tmp_path):
    file = tmp_path / "a-file"
    file.write_text("x")
    for out, message in [(file, "is a file, not a folder"), (file / "sub", "cannot create or read output folder")]:
        code, err = simulate(capsys, out)
        assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err
    assert file.read_text() == "x"


def test_a_folder_in_use_is_refused_with_the_writers_pid(capsys, tmp_path):
    out = tmp_path / "data"
    with claim_output(out, "dataset"):
        assert (out / LOCK).read_text().strip() == str(os.getpid())
        code, err = simulate(capsys, out)
        assert code == 2 and err.strip() == f"error: {out} is in use by PID {os.getpid()}: " + (
            "wait for it, or choose another output folder"
        )
    assert simulate(capsys, out)[0] == 0  # released at the end of the block


def test_a_shared_stage_cache_in_use_is_refused(capsys, tmp_path):
    """`train --cache` writes stage folders other runs share: two trainings into one cache at once
    would overwrite each other's files, so the cache is held like an output folder."""
    (tmp_path / "tiny.toml").write_text(TINY_RUN)
    cache = tmp_path / "cache"
    with claim_output(cache, "cache"):
        argv = ["train", "--config", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "run"), "--cache", str(cache)]
        assert main(argv) == 2
        assert capsys.readouterr().err.strip() == (
            f"error: {cache} is in use by PID {os.getpid()}: wait for it, or choose another output folder"
        )


def test_atomic_writes_respect_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        save_tensors(tmp_path / "a.safetensors", {"w": torch.ones(2)})
        os.umask(0o077)
        write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "table",
    ['[methods."../escape"]', '[methods.".hidden"]', '[methods."a/b"]', '[methods.""]', '[methods."tab\\there"]'],
)
def test_matrix_labels_must_be_plain_folder_names(tmp_path, capsys, table):
    (tmp_path / "tiny.toml").write_text(TINY_RUN)
    matrix = tmp_path / "m" / "matrix.toml"
    matrix.parent.mkdir()
    matrix.write_text(f'[systems.lv]\nconfig = "../tiny.toml"\n{table}\n')
    with pytest.raises(ConfigError, match="is not a plain folder name"):
        Matrix.from_toml(matrix)
    before = sorted(tmp_path.rglob("*"))
    assert main(["bench", str(matrix), "--out", str(tmp_path / "m" / "out")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, inside --out or outside it


def test_a_system_label_must_be_a_plain_folder_name(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_RUN)
    (tmp_path / "matrix.toml").write_text('[systems."../../up"]\nconfig = "tiny.toml"\n[methods.a]\n')
    with pytest.raises(ConfigError, match=r"\[systems\]: label '../../up' is not a plain folder name"):
        Matrix.from_toml(tmp_path / "matrix.toml")


def children(pid: int) -> set[int]:
    """PIDs of the processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_initializer_ends_a_worker_when_its_parent_is_killed(tmp_path):
    """A parent process starts a child through ``die_with_parent``; killing the parent with SIGKILL
    ends the child (the bench's pool workers and queue manager start through it)."""
    code = (
        "import multiprocessing, os, sys, time\n"
        "from weightspace.bench.runner import die_with_parent\n"
        "def child(parent):\n"
        "    die_with_parent(parent)\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    p = multiprocessing.get_context('spawn').Process(target=child, args=(os.getpid(),))\n"
        "    p.start()\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    script = tmp_path / "parent.py"
    script.write_text(code)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        time.sleep(3)  # the child has imported weightspace and armed the signal
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


SLOW_MATRIX = """
seeds = [0, 1]
[set]
zoo = { base_steps = 100000 }
[systems.lotka-volterra]
config = "tiny.toml"
[methods.dynadiff]
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_killing_a_bench_ends_its_pool_workers(tmp_path):
    """``bench --jobs 2`` killed (SIGKILL, which it cannot handle) while its two zoos train: no
    process of it is left behind, writing into its stage folders."""
    sig = signal.SIGKILL
    (tmp_path / "tiny.toml").write_text(TINY_RUN)
    (tmp_path / "matrix.toml").write_text(SLOW_MATRIX)
    argv = [sys.executable, "-m", "weightspace.cli", "bench", str(tmp_path / "matrix.toml")]
    argv += ["--out", str(tmp_path / "out"), "--jobs", "2", "--device", "cpu"]
    bench = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    spawned: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        # workers are running nodes once the zoos' folders appear in the cache
        while time.monotonic() < deadline and len(list((tmp_path / "out" / "cache").glob("zoo-*"))) < 2:
            assert bench.poll() is None, "the bench ended before its workers started"
            spawned |= children(bench.pid)
            time.sleep(0.2)
        spawned |= children(bench.pid)
        assert len(spawned) >= 3  # two workers and the progress queue's manager (and the resource tracker)
        bench.send_signal(sig)
        bench.communicate(timeout=60)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in spawned) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in spawned if alive(pid)]
    finally:
        if bench.poll() is None:
            bench.kill()
        for pid in spawned:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_folder_written_before_folders_were_marked_resumes(tmp_path):
    """A zoo, run or bench folder from an older weightspace has no marker but holds the file that
    kind writes: it is weightspace's own, so a rerun resumes there; a user folder is still refused."""
    from weightspace.storage import MARKER, claim_output

    old = tmp_path / "old-run"
    old.mkdir()
    (old / "run.json").write_text("{}")
    with claim_output(old, "run"):
        pass
    assert (old / MARKER).is_file()
    user = tmp_path / "user"
    user.mkdir()
    (user / "run.json").write_text("{}")
    with pytest.raises(StorageError, match="did not create it"), claim_output(user, "zoo"):
        pass
