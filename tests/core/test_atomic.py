"""Atomic writes: all or nothing, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest
from hc_studio.core.atomic import atomic_write, atomic_write_bytes


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half a ")
        raise RuntimeError("crash in the middle")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_a_written_file_gets_the_permissions_of_a_plain_open(tmp_path) -> None:
    old_mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "model.onnx", b"weights")
    finally:
        os.umask(old_mask)
    mode = stat.S_IMODE((tmp_path / "model.onnx").stat().st_mode)
    assert mode == 0o644
