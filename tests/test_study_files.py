"""study_files.commit: the commit a study result names, marked when the code differs from it."""

import importlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture
def study_files(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    # git must see only the repositories these tests make, whatever runs pytest (a git hook
    # sets GIT_DIR; a temporary folder may lie inside a checkout).
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return importlib.import_module("study_files")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           "-c", "commit.gpgsign=false", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(study_files, tmp_path, monkeypatch):
    root = tmp_path / "repo"
    for folder in ("src", "scripts", "docs"):
        (root / folder).mkdir(parents=True)
        (root / folder / "file.txt").write_text("first\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    monkeypatch.setattr(study_files, "REPO", root)
    return root


def test_commit_names_head_when_the_code_is_unchanged(study_files, repo):
    head = git(repo, "rev-parse", "--short", "HEAD")
    assert study_files.commit() == head
    (repo / "docs" / "file.txt").write_text("a study rewrote its table\n")  # results don't count
    (repo / "docs" / "new.json").write_text("{}\n")
    assert study_files.commit() == head


def test_a_file_touched_but_not_changed_is_no_change(study_files, repo):
    later = (repo / "src" / "file.txt").stat().st_mtime + 100
    os.utime(repo / "src" / "file.txt", (later, later))
    assert study_files.commit() == git(repo, "rev-parse", "--short", "HEAD")


@pytest.mark.parametrize("change", ["modified", "staged", "untracked"])
def test_commit_is_marked_when_the_code_differs_from_head(study_files, repo, change):
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


def test_commit_is_none_without_git(study_files, repo, monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")
    monkeypatch.setattr(study_files.subprocess, "run", no_git)
    assert study_files.commit() is None


def test_cells_run_in_workers_of_one_thread(study_files, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    seen = []
    study_files.run_cells(os.getenv, ["OMP_NUM_THREADS"], 1, name=str, on_result=seen.append)
    assert seen == ["1"]
