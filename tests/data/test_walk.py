"""The one file walker, shared by ImageFolder and apply_files."""

from __future__ import annotations

import os

import pytest

from lossnet.data.walk import walk_files


def touch(root, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def rel(root, files) -> list[str]:
    return [p.relative_to(root).as_posix() for p in files]


def test_sorted_by_path_parts_and_hidden_names_skipped(tmp_path) -> None:
    touch(tmp_path, "b.png", "a.png/c.png", "a/z.png", "a-b.png", ".hidden.png", ".cache/x.png", "a/.d/y.png")
    # By parts: "a" < "a-b.png" < "a.png" < "b.png", whatever a string sort of the full paths says.
    assert rel(tmp_path, walk_files(tmp_path)) == ["a/z.png", "a-b.png", "a.png/c.png", "b.png"]


def test_the_excluded_folder_is_left_out_unless_it_is_the_folder_itself(tmp_path) -> None:
    touch(tmp_path, "in/x.png", "in/out/y.png", "in/outer/z.png")
    assert rel(tmp_path, walk_files(tmp_path / "in", exclude=tmp_path / "in" / "out")) == ["in/outer/z.png", "in/x.png"]
    assert rel(tmp_path, walk_files(tmp_path / "in", exclude=tmp_path / "in")) == [
        "in/out/y.png", "in/outer/z.png", "in/x.png"]  # fmt: skip


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path) -> None:
    touch(tmp_path, "root/a/x.png", "other/y.png")
    os.symlink(tmp_path / "root", tmp_path / "root" / "a" / "loop")  # a loop back to the top
    os.symlink(tmp_path / "other", tmp_path / "root" / "b")  # a folder elsewhere, followed
    os.symlink(tmp_path / "other", tmp_path / "root" / "c")  # a second link to it: not again
    assert rel(tmp_path / "root", walk_files(tmp_path / "root")) == ["a/x.png", "b/y.png"]
    # The excluded folder may be reached through a link: it is compared by real path.
    assert rel(tmp_path / "root", walk_files(tmp_path / "root", exclude=tmp_path / "other")) == ["a/x.png"]
