from __future__ import annotations

import pytest

from lossnet.atomic import atomic_writer, write_text


def test_interrupted_write_keeps_the_old_file(tmp_path) -> None:
    target = write_text(tmp_path / "log.csv", "old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_writer(target, "w") as f:
            f.write("new, half written")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_creates_parent_folders(tmp_path) -> None:
    assert write_text(tmp_path / "a" / "b" / "c.txt", "x").read_text() == "x"
