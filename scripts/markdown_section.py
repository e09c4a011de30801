"""The part of a markdown file that a script owns: the text between its two marker lines.

A script rewrites only its own section, so notes written around the section by hand survive
every run; a file without the markers gets the section added at its end (after `heading` when
the file does not exist yet). The file is replaced atomically, so an interrupted write leaves
the previous version.
"""

from __future__ import annotations

from pathlib import Path

from study_files import write_atomic


def markers(owner: str) -> tuple[str, str]:
    """The begin and end marker lines of `owner`'s section (HTML comments: markdown hides them)."""
    return f"<!-- {owner}: begin -->", f"<!-- {owner}: end -->"


def replace_section(text: str, begin: str, end: str, body: str) -> str:
    """`text` with the part from `begin` to `end` (markers included) replaced by `body` between
    the markers; the section appended when `text` lacks either marker."""
    block = f"{begin}\n{body.rstrip()}\n{end}"
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        return text[:start] + block + text[stop + len(end):]
    return (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"


def write_section(path: Path, begin: str, end: str, body: str, heading: str = "") -> None:
    """Put `body` between the markers in the file at `path` (created, with `heading` first, when
    missing), keeping the rest of the file."""
    path = Path(path)
    old = path.read_text() if path.exists() else heading
    write_atomic(path, replace_section(old, begin, end, body))
