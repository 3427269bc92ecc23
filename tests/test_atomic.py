from __future__ import annotations

import os
import stat

import pytest

from unscene3d.io.atomic import atomic_output, atomic_write_bytes, atomic_write_text


def test_write_text_and_bytes_create_parent_folders(tmp_path):
    atomic_write_text(tmp_path / "a" / "b.txt", "héllo\n")
    atomic_write_bytes(tmp_path / "c.bin", b"\x00\x01")
    assert (tmp_path / "a" / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.txt", "c.bin"]


def test_new_file_is_readable_by_others_not_private(tmp_path):
    atomic_write_text(tmp_path / "x.txt", "x")
    assert stat.S_IMODE(os.stat(tmp_path / "x.txt").st_mode) == 0o644


def test_replaces_existing_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_temp_file_is_in_the_same_folder_and_renamed_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert not tmp.exists()


def test_failure_leaves_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
