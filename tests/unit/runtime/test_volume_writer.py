"""The node side of volumes on a temporary folder: kubelet's AtomicWriter layout (``..data``
swapped to a fresh timestamped folder, user-visible links, stale names removed, nothing
written for an unchanged payload), hostPath type checks and their wording, subPath
resolution."""

from __future__ import annotations

import os
import socket
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from svcnet.runtime.volumes.plan import FileEntry, MountError
from svcnet.runtime.volumes.writer import (
    check_host_path,
    remove_orphan_volumes,
    resolve_sub_path,
    write_atomic,
)

NOW = datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC)


def shown(folder: Path) -> dict[str, tuple[str, str]]:
    """What a reader of the volume sees: visible path → (content, mode)."""
    out = {}
    for dirpath, _dirs, files in os.walk(folder, followlinks=True):
        rel_dir = os.path.relpath(dirpath, folder)
        if rel_dir.split("/")[0].startswith(".."):
            continue
        for f in files:
            p = Path(dirpath, f)
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if not rel.startswith(".."):
                out[rel] = (p.read_text(), oct(stat.S_IMODE(p.stat().st_mode)))
    return out


def test_first_write_lays_out_data_link_and_visible_links(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    assert write_atomic(str(vol), {"a": FileEntry(b"1", 0o644), "d/b": FileEntry(b"2", 0o400)}, NOW)
    data = os.readlink(vol / "..data")
    assert data.startswith("..2026_12_08_01_02_03.")
    assert os.readlink(vol / "a") == "..data/a"
    assert os.readlink(vol / "d") == "..data/d"
    assert shown(vol) == {"a": ("1", "0o644"), "d/b": ("2", "0o400")}


def test_unchanged_payload_writes_nothing(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    write_atomic(str(vol), {"a": FileEntry(b"1", 0o644)}, NOW)
    before = os.readlink(vol / "..data")
    assert not write_atomic(str(vol), {"a": FileEntry(b"1", 0o644)}, NOW)
    assert os.readlink(vol / "..data") == before


@pytest.mark.parametrize(
    "second",
    [
        {"a": FileEntry(b"changed", 0o644)},
        {"a": FileEntry(b"1", 0o600)},
        {"c": FileEntry(b"3", 0o644)},
    ],
)
def test_a_change_swaps_data_and_removes_the_old_folder_and_names(
    tmp_path: Path, second: dict[str, FileEntry]
) -> None:
    vol = tmp_path / "v"
    write_atomic(str(vol), {"a": FileEntry(b"1", 0o644), "b": FileEntry(b"2", 0o644)}, NOW)
    old = os.readlink(vol / "..data")
    assert write_atomic(str(vol), second, NOW)
    assert os.readlink(vol / "..data") != old
    assert not (vol / old).exists()
    assert shown(vol) == {p: (e.data.decode(), oct(e.mode)) for p, e in second.items()}
    assert sorted(n for n in os.listdir(vol) if not n.startswith("..")) == sorted(second)


def test_an_open_reader_keeps_the_old_content_while_a_new_one_sees_the_new(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    write_atomic(str(vol), {"a": FileEntry(b"old", 0o644)}, NOW)
    with open(vol / "a") as held:
        write_atomic(str(vol), {"a": FileEntry(b"new", 0o644)}, NOW)
        assert held.read() == "old"
    assert (vol / "a").read_text() == "new"


def _socket(path: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


@pytest.mark.parametrize(
    ("kind", "make", "message"),
    [
        ("Directory", None, "hostPath type check failed: {p} is not a directory"),
        ("Directory", "file", "hostPath type check failed: {p} is not a directory"),
        ("File", "dir", "hostPath type check failed: {p} is not a file"),
        ("File", None, "hostPath type check failed: {p} is not a file"),
        ("Socket", "file", "hostPath type check failed: {p} is not a socket file"),
        ("CharDevice", "file", "hostPath type check failed: {p} is not a character device"),
        ("BlockDevice", "file", "hostPath type check failed: {p} is not a block device"),
        ("DirectoryOrCreate", "file", "hostPath type check failed: {p} is not a directory"),
        ("FileOrCreate", "dir", "hostPath type check failed: {p} is not a file"),
        ("Bogus", "dir", "Bogus is an invalid volume type"),
    ],
)
def test_host_path_type_check_failures(
    tmp_path: Path, kind: str, make: str | None, message: str
) -> None:
    p = tmp_path / "x"
    if make == "file":
        p.write_text("")
    elif make == "dir":
        p.mkdir()
    with pytest.raises(MountError) as e:
        check_host_path("h", str(p), kind)
    assert str(e.value) == message.format(p=p)
    assert e.value.volume == "h"


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("", None),
        ("Directory", "dir"),
        ("File", "file"),
        ("Socket", "socket"),
        ("CharDevice", "char"),
        ("DirectoryOrCreate", None),
        ("FileOrCreate", None),
        ("DirectoryOrCreate", "dir"),
    ],
)
def test_host_path_type_check_passes(tmp_path: Path, kind: str, make: str | None) -> None:
    p = tmp_path / "x"
    if make == "file":
        p.write_text("")
    elif make == "dir":
        p.mkdir()
    elif make == "socket":
        _socket(p)
    elif make == "char":
        p = Path("/dev/null")
    check_host_path("h", str(p), kind)
    if kind == "DirectoryOrCreate":
        assert p.is_dir()
    if kind == "FileOrCreate":
        assert p.is_file() and oct(stat.S_IMODE(p.stat().st_mode)) in ("0o644", "0o600")


def test_sub_path_must_stay_in_its_volume(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    vol.mkdir()
    (vol / "out").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="not within volume path"):
        resolve_sub_path(str(vol), "out", create=False)
    with pytest.raises(FileNotFoundError):
        resolve_sub_path(str(vol), "missing", create=False)
    assert resolve_sub_path(str(vol), "new/dir", create=True) == str(vol / "new" / "dir")


def test_orphan_volumes_go_but_log_folders_and_kept_pods_stay(tmp_path: Path) -> None:
    for d in ("gone/volumes/kubernetes.io~empty-dir/x", "kept/volumes", "ns_pod_uid"):
        (tmp_path / d).mkdir(parents=True)
    assert remove_orphan_volumes(str(tmp_path), {"kept"}) == ["gone"]
    assert sorted(os.listdir(tmp_path)) == ["kept", "ns_pod_uid"]
