"""study_files: the commit a study result names, marked when the code differs from it; the
workers of one thread, a cell's error raised in the study; train_cell, one cell's run and the facts its file records."""

import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


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


@needs_git
def test_commit_names_head_when_the_code_is_unchanged(study_files, repo):
    head = git(repo, "rev-parse", "--short", "HEAD")
    assert study_files.commit() == head
    (repo / "docs" / "file.txt").write_text("a study rewrote its table\n")  # results don't count
    (repo / "docs" / "new.json").write_text("{}\n")
    assert study_files.commit() == head


@needs_git
def test_a_file_touched_but_not_changed_is_no_change(study_files, repo):
    later = (repo / "src" / "file.txt").stat().st_mtime + 100
    os.utime(repo / "src" / "file.txt", (later, later))
    assert study_files.commit() == git(repo, "rev-parse", "--short", "HEAD")


@needs_git
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


@needs_git
def test_commit_is_none_outside_a_checkout(study_files, tmp_path, monkeypatch):
    monkeypatch.setattr(study_files, "REPO", tmp_path)
    assert study_files.commit() is None


@needs_git
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


def test_an_error_of_a_cell_is_raised_in_the_study_with_its_traceback(study_files):
    seen = []
    with pytest.raises(ValueError, match="invalid literal") as raised:
        study_files.run_cells(int, ["1", "x", "2"], 1, name=str, on_result=seen.append)
    assert seen == [1]
    assert "Traceback" in str(raised.value.__cause__)   # the one in the cell's process


class _TwoPartError(Exception):
    """An exception pickle cannot rebuild: its __init__ takes other arguments than its args."""

    def __init__(self, part, whole):
        super().__init__(f"{part} of {whole}")


def _raise_two_part_error(part):
    raise _TwoPartError(part, 2)


def test_an_error_the_study_cannot_unpickle_is_raised_by_name_with_its_traceback(study_files):
    with pytest.raises(RuntimeError, match="^_TwoPartError: 1 of 2$") as raised:
        study_files.run_cells(_raise_two_part_error, [1], 1, name=str, on_result=print)
    assert "_raise_two_part_error" in str(raised.value.__cause__)


def test_a_cell_process_that_ends_without_a_result_is_an_error(study_files):
    with pytest.raises(RuntimeError, match="^the process of cell 3 ended with exit status 3 "
                                           "without a result$"):
        study_files.run_cells(os._exit, [3], 1, name=str, on_result=print)


@pytest.fixture
def stop_handlers(study_files):
    """The SIGTERM and SIGINT handlers this process had, put back after the test."""
    original = {sig: signal.getsignal(sig) for sig in study_files.STOP_SIGNALS}
    yield original
    study_files.end_stop_before_cells()
    for sig, handler in original.items():
        signal.signal(sig, handler)


def handlers(study_files) -> dict:
    return {sig: signal.getsignal(sig) for sig in study_files.STOP_SIGNALS}


def test_once_the_cells_have_run_a_stop_is_no_longer_one_before_them(study_files,
                                                                      stop_handlers):
    # In this process: the handlers the stop before the cells replaced are back after
    # run_cells, so that a stop while the study writes its tables is not reported as one before
    # any cell started.
    study_files.stop_cleanly_before_cells()
    assert handlers(study_files) == dict.fromkeys(study_files.STOP_SIGNALS,
                                                  study_files._BEFORE_CELLS)
    study_files.run_cells(abs, [-1], 1, name=str, on_result=print)
    assert handlers(study_files) == stop_handlers


def test_the_handlers_are_back_after_cells_that_raise(study_files, stop_handlers):
    study_files.stop_cleanly_before_cells()
    with pytest.raises(RuntimeError, match="without a result"):
        study_files.run_cells(os._exit, [3], 1, name=str, on_result=print)
    assert handlers(study_files) == stop_handlers


def test_the_stop_before_the_cells_begins_and_ends_once_however_often_called(study_files,
                                                                              stop_handlers):
    study_files.stop_cleanly_before_cells()
    study_files.stop_cleanly_before_cells()   # its handler is not noted as the one replaced
    study_files.end_stop_before_cells()
    assert handlers(study_files) == stop_handlers
    # A handler installed since is left as it is.
    study_files.stop_cleanly_before_cells()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    study_files.end_stop_before_cells()
    study_files.end_stop_before_cells()
    assert handlers(study_files) == {**stop_handlers, signal.SIGINT: signal.SIG_IGN}


def test_the_line_of_a_stop_before_the_cells_needs_no_sys_stderr(study_files, monkeypatch,
                                                                  capfd):
    monkeypatch.setattr(sys, "stderr", None)
    with pytest.raises(SystemExit) as stopped:
        study_files._StopBeforeCells()(signal.SIGTERM, None)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert "stopped by SIGTERM before any cell started" in capfd.readouterr().err


def test_a_closed_stderr_leaves_the_exit_status_of_a_stop_before_the_cells(study_files,
                                                                           monkeypatch):
    def closed(fd, data):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(study_files.os, "write", closed)
    with pytest.raises(SystemExit) as stopped:
        study_files._StopBeforeCells()(signal.SIGINT, None)
    assert stopped.value.code == 128 + signal.SIGINT


def test_an_interrupted_write_leaves_the_previous_file_and_nothing_else(study_files, tmp_path,
                                                                        monkeypatch):
    path = tmp_path / "out" / "table.md"
    study_files.write_atomic(path, "before ±\n")

    def interrupted(tmp, path):   # Ctrl-C as the new version is about to replace the old
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        study_files.write_atomic(path, "after\n")
    assert path.read_text(encoding="utf-8") == "before ±\n"
    assert list(path.parent.iterdir()) == [path]


# -- train_cell: one cell's run, on run_train stand-ins -------------------------------------------

FACTS = ["cpu_seconds", "resumed_from_step", "torch_threads", "torch", "machine", "commit",
         "finished"]


@pytest.fixture
def cell(study_files, tmp_path, monkeypatch):
    """train_cell on the toy GAN, with `run_train` replaced by `cell.train` (set by each test)
    and a commit that names the code changed once training has started, as if it were edited
    while the cell trains."""
    import gentool.train
    import torch

    class Cell:
        train = None
        trained_with = None
        run_dir = tmp_path / "run"

    def train(cfg, run_dir):
        Cell.trained_with = (cfg, run_dir)
        Cell.train(cfg, run_dir)

    def commit():
        return "abc1234" + ("+changes" if Cell.trained_with else "")

    monkeypatch.setattr(gentool.train, "run_train", train)
    monkeypatch.setattr(study_files, "commit", commit)
    threads = torch.get_num_threads()
    yield Cell
    torch.set_num_threads(threads)


def _busy(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_train_cell_trains_the_composed_config_and_records_the_run_facts(study_files, cell,
                                                                        monkeypatch):
    import gentool.engine.checkpoint
    import torch

    torch.set_num_threads(2)
    (cell.run_dir / "checkpoints").mkdir(parents=True)
    (cell.run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    read = []
    monkeypatch.setattr(gentool.engine.checkpoint, "load_checkpoint",
                        lambda path: read.append(Path(path)) or {"step": 1234})

    def train(cfg, run_dir):
        assert torch.get_num_threads() == 1     # a worker trains on one thread
        _busy(0.3)
    cell.train = train
    run = study_files.train_cell(["experiment=gan_toy_small", "seed=7", "trainer.max_steps=9"],
                                 cell.run_dir)
    cfg, run_dir = cell.trained_with
    assert (cfg.seed, cfg.trainer.max_steps, run_dir) == (7, 9, cell.run_dir)
    assert run.cfg is cfg and read == [cell.run_dir / "checkpoints" / "last.pt"]
    assert (run.status, run.interrupted, run.resumed_from_step) == ("finished", None, 1234)
    assert run.train_seconds >= 0.3 and run.seconds() >= run.train_seconds

    _busy(0.3)   # the facts are taken when asked for: a caller's evaluation counts
    facts = run.facts()
    assert list(facts) == FACTS
    assert facts["cpu_seconds"] >= 0.6
    assert facts["resumed_from_step"] == 1234
    assert facts["torch_threads"] == 1 and facts["torch"] == torch.__version__
    assert facts["machine"] == study_files.machine()
    assert facts["commit"] == "abc1234"   # the code the run started with
    assert abs(time.mktime(time.strptime(facts["finished"], "%Y-%m-%d %H:%M:%S")) -
               time.time()) < 5


def test_train_cell_starts_a_run_without_a_checkpoint_at_step_0(study_files, cell):
    cell.train = lambda cfg, run_dir: None
    run = study_files.train_cell(["experiment=gan_toy_small"], cell.run_dir)
    assert run.resumed_from_step == 0 and run.facts()["resumed_from_step"] == 0


def test_train_cell_notes_a_run_stopped_by_a_signal(study_files, cell):
    from gentool.engine.stop import RunStopped

    def train(cfg, run_dir):
        raise RunStopped(signal.SIGTERM, 3, Path(run_dir) / "checkpoints" / "last.pt", None)
    cell.train = train
    run = study_files.train_cell(["experiment=gan_toy_small"], cell.run_dir)
    assert run.interrupted == (f"stopped at step 3 by SIGTERM; checkpoint "
                               f"{cell.run_dir / 'checkpoints' / 'last.pt'}")
    assert run.status == "finished"


def test_train_cell_keeps_a_diverged_run_as_a_failed_one(study_files, cell):
    from gentool.errors import TrainingDiverged

    def train(cfg, run_dir):
        raise TrainingDiverged("the loss became nan at step 5")
    cell.train = train
    run = study_files.train_cell(["experiment=gan_toy_small"], cell.run_dir)
    assert (run.status, run.interrupted) == ("the loss became nan at step 5", None)
    assert list(run.facts()) == FACTS


def test_train_cell_lets_other_errors_through(study_files, cell):
    def train(cfg, run_dir):
        raise ValueError("a bug")
    cell.train = train
    with pytest.raises(ValueError, match="a bug"):
        study_files.train_cell(["experiment=gan_toy_small"], cell.run_dir)


def test_cell_files_are_standard_json_with_null_for_undefined_figures(study_files, tmp_path):
    import json

    def refuse(constant):
        raise ValueError(f"{constant} is not standard JSON")

    path = tmp_path / "cells" / "seed0.json"
    study_files.write_json(path, {"modes": 0.0, "reverse_kl": float("nan"),
                                  "curve": [[10, float("inf")]]})
    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "modes": 0.0, "reverse_kl": None, "curve": [[10, None]]}
