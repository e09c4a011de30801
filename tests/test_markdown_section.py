"""scripts/markdown_section.py: a script's section of a markdown file, the rest kept."""

import importlib
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def section(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("markdown_section")


def test_the_section_between_the_markers_is_replaced_and_the_rest_kept(section, tmp_path):
    begin, end = section.markers("scripts/x.py")
    assert (begin, end) == ("<!-- scripts/x.py: begin -->", "<!-- scripts/x.py: end -->")
    path = tmp_path / "notes" / "x.md"
    section.write_section(path, begin, end, "first\n", heading="# X\n")   # a new file
    assert path.read_text() == f"# X\n\n{begin}\nfirst\n{end}\n"
    path.write_text(f"# X\n\nby hand\n\n{begin}\nfirst\n{end}\n\nafter\n")
    section.write_section(path, begin, end, "second", heading="# unused\n")
    assert path.read_text() == f"# X\n\nby hand\n\n{begin}\nsecond\n{end}\n\nafter\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.md"]   # no temporary file left


def test_a_file_without_both_markers_gets_the_section_at_its_end(section):
    begin, end = section.markers("s")
    assert section.replace_section("# T\n\nnotes\n", begin, end, "b") == \
        f"# T\n\nnotes\n\n{begin}\nb\n{end}\n"
    # Another script's section stays as it is.
    other = "<!-- t: begin -->\nt's\n<!-- t: end -->\n"
    assert section.replace_section(other + f"{begin}\nold\n{end}\n", begin, end, "new") == \
        other + f"{begin}\nnew\n{end}\n"
