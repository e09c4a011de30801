#!/usr/bin/env python
"""A real text corpus that exists offline on any Debian-based machine: package descriptions by
Section, written as a `text_folder` data set (OUT/<section>/<package>.txt).

    python scripts/debian_corpus.py OUT [--sections 15] [--min-docs 300] [--max-docs 1000]

Each document is one package's description: the long text (`Description-en` of the
Translation-en index, read through `apt-cache show`) when the machine has it, else the one-line
summary of `apt-cache dumpavail`. Its label is the package's `Section:` without the
"contrib/" / "non-free/" / "non-free-firmware/" prefix. Packages whose description text repeats
one already taken (a library and its -dev package often share it) are skipped, so no text is in
both splits. The largest `--sections` sections with at least `--min-docs` documents are kept, at
most `--max-docs` documents each (the first by package name), so no topic swamps the rest.

Long descriptions need the Translation-en index, which Docker images often leave out; fetch it
once with `apt-get update -o Acquire::Languages=en` (this script says so when it is missing).
There is no test/ sub-tree: `dataset=text_folder` makes its seeded split.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PREFIXES = ("contrib/", "non-free/", "non-free-firmware/")
CHUNK = 2000   # packages per `apt-cache show` call (the command line stays short)


def records(text: str):
    """The stanzas of a Debian control file as {field: value} (continuation lines joined)."""
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line[1:]
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def description_text(value: str) -> str:
    """A description field as plain text: the summary line, then the long lines (a lone "." is
    Debian's paragraph break)."""
    lines = [line.strip() for line in value.splitlines()]
    return "\n".join("" if line == "." else line for line in lines).strip() + "\n"


def apt(*args: str) -> str:
    return subprocess.run(["apt-cache", *args], check=True, capture_output=True,
                          text=True).stdout


def packages_by_section() -> dict[str, tuple[str, str]]:
    """package -> (section, one-line description) of every available package."""
    found = {}
    for fields in records(apt("dumpavail")):
        name, section = fields.get("Package"), fields.get("Section")
        if not name or not section or name in found:
            continue
        for prefix in PREFIXES:
            section = section.removeprefix(prefix)
        found[name] = (section, fields.get("Description", ""))
    return found


def long_descriptions(names: list[str]) -> dict[str, str]:
    """package -> its long description (Description-en), where the Translation-en index has it."""
    texts = {}
    for start in range(0, len(names), CHUNK):
        out = apt("-o", "Acquire::Languages=en", "show", "--no-all-versions",
                  *names[start:start + CHUNK])
        for fields in records(out):
            if "Description-en" in fields and fields.get("Package") not in texts:
                texts[fields["Package"]] = fields["Description-en"]
    return texts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (OUT/<section>/<pkg>.txt)")
    parser.add_argument("--sections", type=int, default=15, help="how many sections to keep")
    parser.add_argument("--min-docs", type=int, default=300,
                        help="smallest section kept (documents after de-duplication)")
    parser.add_argument("--max-docs", type=int, default=1000, help="documents kept per section")
    args = parser.parse_args(argv)

    packages = packages_by_section()
    if len(packages) < 1000:
        print(f"apt-cache dumpavail lists only {len(packages)} packages; run apt-get update "
              "first.", file=sys.stderr)
        return 1
    names = sorted(packages)
    texts = long_descriptions(names)
    if len(texts) < len(names) // 2:
        print(f"Only {len(texts)} of {len(names)} packages have a long description, so most "
              "documents are one line; for the long texts run apt-get update -o "
              "Acquire::Languages=en first.", file=sys.stderr)
    by_section: dict[str, list[tuple[str, str]]] = defaultdict(list)
    seen: set[str] = set()
    for name in names:
        section, summary = packages[name]
        text = description_text(texts.get(name, summary))
        if text in seen:
            continue
        seen.add(text)
        by_section[section].append((name, text))
    kept = sorted((s for s, docs in by_section.items() if len(docs) >= args.min_docs),
                  key=lambda s: (-len(by_section[s]), s))[:args.sections]
    if not kept:
        print(f"No section has {args.min_docs} documents; lower --min-docs.", file=sys.stderr)
        return 1
    for section in kept:
        folder = args.out / section
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in by_section[section][:args.max_docs]:
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        print(f"{section}: {min(len(by_section[section]), args.max_docs)} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
