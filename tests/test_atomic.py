"""Atomic writes: a reader sees the old file or the whole new one; no partial file stays."""

import pytest

from lensbook.core.atomic import write_atomically


def test_the_new_file_replaces_the_old_and_nothing_else_is_left(tmp_path):
    path = tmp_path / "state.bin"
    path.write_text("old")
    assert write_atomically(path, lambda p: p.write_text("new")) == path
    assert path.read_text() == "new"
    assert [f.name for f in tmp_path.iterdir()] == ["state.bin"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_partial(tmp_path):
    path = tmp_path / "state.bin"
    path.write_text("old")

    def half_then_crash(partial):
        partial.write_text("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_crash)
    assert path.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["state.bin"]
