"""scripts/debian_corpus.py on a fake apt-cache: sections, long descriptions, de-duplication."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "debian_corpus.py"


def load_script():
    spec = importlib.util.spec_from_file_location("debian_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_apt(packages):
    """`apt-cache dumpavail` and `show` answers for {name: (section, long description)}."""
    def apt(*args):
        if args[0] == "dumpavail":
            return "\n\n".join(f"Package: {n}\nSection: {s}\nDescription: {d.splitlines()[0]}"
                               for n, (s, d) in packages.items()) + "\n"
        names = [a for a in args if a in packages]
        return "\n\n".join(f"Package: {n}\nDescription-en: " + packages[n][1].replace("\n", "\n ")
                           for n in names) + "\n"
    return apt


def test_sections_become_class_folders_of_long_descriptions(tmp_path, monkeypatch):
    corpus = load_script()
    packages = {f"pkg{i}": (("contrib/games" if i % 2 else "science"),
                            f"tool number {i}\nIt computes {i} things.\n.\nSecond paragraph.")
                for i in range(1200)}
    packages["zdup"] = ("science", packages["pkg0"][1])       # same text as pkg0: skipped
    packages["lonely"] = ("misc", "one of a kind\nalone")    # a section below --min-docs
    monkeypatch.setattr(corpus, "apt", fake_apt(packages))
    assert corpus.main([str(tmp_path / "out"), "--min-docs", "10", "--max-docs", "50"]) == 0
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert folders == ["games", "science"]                   # "contrib/" stripped, misc dropped
    assert len(list((tmp_path / "out" / "science").iterdir())) == 50
    text = (tmp_path / "out" / "science" / "pkg0.txt").read_text()
    assert text == "tool number 0\nIt computes 0 things.\n\nSecond paragraph.\n"
    assert not (tmp_path / "out" / "science" / "zdup.txt").exists()
