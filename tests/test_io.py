"""Tests for sklearn_brain._io: atomic writes, and the temporary files of killed writers."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from sklearn_brain._io import (
    STALE_AGE_S,
    atomic_open,
    atomic_path,
    check_writable,
    pid_alive,
    remove_stale_temp_files,
    temp_path,
)
from sklearn_brain.study._io import write_csv


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid no longer runs
    assert not pid_alive(proc.pid)
    return proc.pid


def _temp_of(target, pid=None, host=None):
    """The name a writer with process id ``pid`` (on ``host``) gives ``target``'s temp file."""
    name = os.path.basename(temp_path(target))
    prefix, rest = name.split(".tmp-", 1)
    _, own_host, token = rest.split("-", 2)
    return target.parent / (f"{prefix}.tmp-{pid or os.getpid()}-{host or own_host}-{token}")


def test_temp_path_names_the_writer_and_keeps_the_suffix(tmp_path):
    tmp = temp_path(tmp_path / "results.png")
    name = os.path.basename(tmp)
    assert os.path.dirname(tmp) == str(tmp_path)
    assert name.startswith(f".results.png.tmp-{os.getpid()}-") and name.endswith(".png")
    assert temp_path(tmp_path / "results.png") != tmp  # a random token per write


def test_successful_write_replaces_the_file(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with atomic_open(target) as f:
        json.dump({"a": 1}, f)
    assert json.loads(target.read_text()) == {"a": 1}
    with atomic_open(target, "wb") as f:
        f.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    with atomic_path(tmp_path / "x.npy") as tmp:
        np.save(tmp, np.arange(3))  # the suffix is kept: numpy adds no second ".npy"
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "x.npy"]
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_open(target, "a"):
            pass


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()],
                         ids=["exception", "KeyboardInterrupt"])
def test_a_write_that_raises_leaves_no_temp_file(tmp_path, error):
    target = tmp_path / "a.txt"
    target.write_text("previous")
    with pytest.raises(type(error)):
        with atomic_open(target) as f:
            f.write("half")
            raise error
    with pytest.raises(type(error)):
        with atomic_path(tmp_path / "b.bin") as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise error
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_study_csv_that_fails_midway_leaves_the_previous_table(tmp_path):
    target = tmp_path / "results.csv"
    write_csv(target, [{"model": "ridge", "top1": 0.5}])
    before = target.read_text()
    with pytest.raises(AttributeError):
        write_csv(target, [{"model": "ridge", "top1": 0.7}, "not a row"], ["model", "top1"])
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_stale_temp_files_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "u.json"
    dead = _temp_of(target, pid=_dead_pid())
    live = _temp_of(target)  # this process: still writing
    other_host = _temp_of(target, pid=_dead_pid(), host="0" * 8)  # its pid means nothing here
    old_live = _temp_of(tmp_path / "v.json")
    not_ours = tmp_path / ".u.json.tmp"  # not a name atomic writes use
    for p in (dead, live, other_host, old_live, not_ours):
        p.write_text("partial")
    two_days_ago = time.time() - 2 * STALE_AGE_S
    os.utime(old_live, (two_days_ago, two_days_ago))
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(removed) == sorted([str(dead), str(old_live)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other_host.name, not_ours.name])
    assert remove_stale_temp_files(tmp_path / "missing") == []


def test_killed_writers_temp_files_are_swept_by_the_next_cache_write(tmp_path):
    """A dead writer's temp file beside a cache entry is removed at the next cache write."""
    from sklearn_brain.featurizers import AlexNetFeaturizer

    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)

    def featurizer(memory):
        return AlexNetFeaturizer("features.5", weights=None, image_size=64, device="cpu",
                                 batch_size=2, memory=str(memory), random_state=0).fit()

    # where the entries go (the cache key does not depend on the folder)
    Z = featurizer(tmp_path / "first").transform(images)
    root = tmp_path / "first"
    entries = sorted(p.relative_to(root) for p in root.rglob("*.feat"))
    assert len(entries) == 2
    # a fresh cache whose folders hold what killed (and running) writers left
    cache = tmp_path / "second"
    stale, running = [], []
    for rel in entries:
        (cache / rel).parent.mkdir(parents=True, exist_ok=True)
        stale.append(_temp_of(cache / rel, pid=_dead_pid()))
        running.append(_temp_of(cache / rel))
        for p in (stale[-1], running[-1]):
            p.write_bytes(b"half an entry")
    Z2 = featurizer(cache).transform(images)
    np.testing.assert_array_equal(Z2, Z)
    left = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file()
                  and p.name != ".gitignore")
    assert left == sorted(entries + [p.relative_to(cache) for p in running])
    # the cached values are read back unchanged
    np.testing.assert_array_equal(featurizer(cache).transform(images), Z)


def test_check_writable_creates_the_folder_and_leaves_nothing(tmp_path):
    folder = tmp_path / "a" / "b"
    check_writable(folder)
    assert folder.is_dir() and list(folder.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        check_writable(tmp_path / "file")  # a file where the folder should be
    with pytest.raises(OSError):
        check_writable(tmp_path / "file" / "sub")


def test_the_dataset_cache_writes_through_the_one_atomic_home():
    # the BOLD5000 cache resumes a stopped write from its partial file (renamed into
    # place when complete); its record of the sessions written goes through atomic_open
    from sklearn_brain import _io
    from sklearn_brain.datasets import _base, _bold5000

    assert _bold5000.atomic_open is _io.atomic_open and _bold5000.file_lock is _io.file_lock
    assert not hasattr(_base, "atomic_path")


def test_file_lock_excludes_a_second_process(tmp_path):
    from sklearn_brain._io import file_lock

    lock = tmp_path / "x.lock"
    script = ("import sys, time; from sklearn_brain._io import file_lock\n"
              "print('ready', flush=True); t = time.time()\n"
              "with file_lock(sys.argv[1]):\n"
              "    print(round(time.time() - t, 1))\n")
    with file_lock(lock):
        proc = subprocess.Popen([sys.executable, "-c", script, str(lock)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)
        assert proc.poll() is None  # waiting for the lock
    waited = float(proc.communicate(timeout=60)[0])
    assert waited >= 1.0 and lock.is_file()
