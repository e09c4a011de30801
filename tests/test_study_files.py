"""study_files.commit: the commit a study result names, marked when the code differs from it."""

import importlib
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def study_files(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("study_files")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    for folder in ("src", "scripts", "docs"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "file.txt").write_text("first\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return tmp_path


def test_commit_names_head_when_the_code_is_unchanged(study_files, repo, monkeypatch):
    monkeypatch.setattr(study_files, "REPO", repo)
    head = git(repo, "rev-parse", "--short", "HEAD")
    assert study_files.commit() == head
    (repo / "docs" / "file.txt").write_text("a study rewrote its table\n")  # results don't count
    (repo / "docs" / "new.json").write_text("{}\n")
    assert study_files.commit() == head


@pytest.mark.parametrize("change", ["modified", "staged", "untracked"])
def test_commit_is_marked_when_the_code_differs_from_head(study_files, repo, monkeypatch, change):
    monkeypatch.setattr(study_files, "REPO", repo)
    head = git(repo, "rev-parse", "--short", "HEAD")
    if change == "untracked":
        (repo / "scripts" / "new_config.yaml").write_text("lr: 1\n")
    else:
        (repo / "src" / "file.txt").write_text("second\n")
        if change == "staged":
            git(repo, "add", "src/file.txt")
    assert study_files.commit() == head + "+changes"


def test_commit_is_none_outside_a_checkout(study_files, tmp_path, monkeypatch):
    monkeypatch.setattr(study_files, "REPO", tmp_path)
    assert study_files.commit() is None
