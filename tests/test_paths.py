"""Files written by the tool stay inside their folder."""

from __future__ import annotations

import os

import pytest

from fetchpool.paths import UnsafePath, safe_join


def test_plain_and_nested_names_stay_inside(tmp_path) -> None:
    assert safe_join(tmp_path, "a.json") == tmp_path.resolve() / "a.json"
    assert safe_join(tmp_path, "sub/dir/b.txt") == tmp_path.resolve() / "sub/dir/b.txt"
    assert safe_join(tmp_path, "sub/../c.txt") == tmp_path.resolve() / "c.txt"


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape", "/etc/passwd", "", ".", "x\x00y", "sub/../.."])
def test_names_that_escape_are_refused(tmp_path, name: str) -> None:
    with pytest.raises(UnsafePath):
        safe_join(tmp_path, name)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path) -> None:
    outside = tmp_path / "outside"
    inside = tmp_path / "inside"
    outside.mkdir()
    inside.mkdir()
    os.symlink(outside, inside / "link")
    with pytest.raises(UnsafePath):
        safe_join(inside, "link/file.txt")
