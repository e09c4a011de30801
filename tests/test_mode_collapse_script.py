"""The mode-collapse study script end to end on a tiny budget (no claims about the figures):
one file per cell, the table rebuilt from the files with the missing cells marked; a run that
diverged written as a failed cell; SIGTERM stops its workers with their checkpoints written, and
a worker whose study is killed stops by itself the same way. A stopped cell resumed and a done
one skipped: tests/test_study_cells.py."""

import importlib
import json
import multiprocessing.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from torch import nn

from gentool.config import check_config
from gentool.engine.checkpoint import load_checkpoint
from gentool.errors import TrainingDiverged
from gentool.methods import build_method, check_method
from gentool.nets.layers import MinibatchDiscrimination

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SRC = SCRIPTS.parent / "src"
# The stop tests find the study's worker and its signal handlers in /proc.
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
# The keys of a cell file of a configuration that keeps every draw, in their order (the
# committed cells' own).
KEYS = ["config", "label", "dataset", "seed", "steps", "overrides", "status", "modes",
        "high_quality", "reverse_kl", "spread", "seconds", "cpu_seconds", "resumed_from_step",
        "torch_threads", "torch", "machine", "commit", "finished"]


def test_study_writes_one_file_per_cell_skips_them_and_rebuilds_the_table(tmp_path,
                                                                         monkeypatch):
    # Importable by name: its worker processes (spawned) import the job function from it.
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("mode_collapse")
    common = ["--steps", "4", "--datasets", "ring", "--cells", str(tmp_path / "cells"),
              "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "table.md")]
    report = study.main([*common, "--seeds", "2", "--workers", "1", "--configs", "plain",
                         "pack2"])
    cells = sorted((tmp_path / "cells").rglob("*.json"))
    assert [c.relative_to(tmp_path / "cells").as_posix() for c in cells] == [
        "ring/pack2/seed0.json", "ring/pack2/seed1.json", "ring/plain/seed0.json",
        "ring/plain/seed1.json"]
    cell = json.loads(cells[0].read_text())
    assert cell["steps"] == 4 and cell["config"] == "pack2" and "model.pack=2" in cell["overrides"]
    assert list(cell) == KEYS
    study_files = importlib.import_module("study_files")
    assert (cell["status"], cell["resumed_from_step"], cell["torch_threads"]) == ("finished", 0, 1)
    assert (cell["machine"], cell["commit"]) == (study_files.machine(), study_files.commit())
    assert "| non-saturating GAN | " in report and "| PacGAN, m=2 | " in report
    # The table is the whole study's, whichever cells the command ran.
    total = len(study.CONFIGS) * len(study.BUDGET) * 3
    assert f"4 of {total} cells finished, {total - 4} missing." in report
    assert "| minimax GAN | missing |" in report and "| minimax | grid | 2 | missing |" in report
    assert "rejects draws by the discriminator's score" in report
    assert "| GAN (PacGAN paper) | 6.3 | 98.2 | 0.45 |" in report

    # The table alone: the third seed and the configurations not run are marked missing.
    (tmp_path / "table.md").write_text("# notes kept\n\nintro\n\n" + study.BEGIN + "\nold\n" +
                                       study.END + "\n\nafter\n")
    report = study.main([*common, "--seeds", "3", "--configs", "plain", "r1", "--table-only"])
    assert "| non-saturating GAN | " in report and "(2/3 seeds)" in report
    assert "| R1, gamma=0.1 | missing | missing | missing |" in report
    assert "| r1 | ring | 2 | missing |" in report
    assert f"4 of {total} cells finished, {total - 4} missing." in report
    text = (tmp_path / "table.md").read_text()
    assert text.startswith("# notes kept\n\nintro\n\n") and text.endswith("\n\nafter\n")
    assert "\nold\n" not in text

    # A cell file of a further seed (a preset checked on more seeds) joins its row and the
    # per-cell table without counting against the cells asked for.
    plain = tmp_path / "cells" / "ring" / "plain"
    (plain / "seed5.json").write_text((plain / "seed0.json").read_text())
    report = study.main([*common, "--seeds", "2", "--configs", "plain", "--table-only"])
    assert "| non-saturating GAN | " in report and "(2/3 seeds and 1 further)" in report
    assert "| plain | ring | 5 | " in report
    assert f"4 of {total} cells finished, {total - 4} missing. Also included: 1 cell of " \
           "further seeds." in report


def test_every_configuration_of_the_study_builds_its_model(monkeypatch, compose_train):
    # A cell's overrides are composed only inside its worker, hours into a study: an override
    # that does not format, compose or build would stop the study there.
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("mode_collapse")
    for config in study.CONFIGS:
        for dataset in study.BUDGET:
            overrides = study.job_overrides(config, dataset, seed=0, steps=100)
            cfg = compose_train(*overrides)
            check_config(cfg)
            check_method(cfg)
            method = build_method(cfg)
            # What the configuration switches on reaches the model: m packed 2-D points are the
            # discriminator's first input, and mbd's layer has the kernels the override names.
            pack = next((int(o.split("=")[1]) for o in overrides if o.startswith("model.pack=")), 1)
            layers = list(method.discriminator.modules())
            first = next(layer for layer in layers if isinstance(layer, nn.Linear))
            assert (method.pack, first.in_features) == (pack, 2 * pack), (config, dataset)
            if config == "mbd":
                assert [(layer.num_kernels, layer.kernel_dim) for layer in layers
                        if isinstance(layer, MinibatchDiscrimination)] == [(50, 5)], dataset


def test_the_tables_show_which_runs_keep_every_draw_and_the_spread(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("mode_collapse")
    run = {"status": "finished", "resumed_from_step": 0, "seconds": 10.0, "cpu_seconds": 9.0}
    found = {("best", "ring", 0): {**run, "modes": 8.0, "high_quality": 90.0, "reverse_kl": 0.1,
                                   "rejection": {"modes": 8.0, "high_quality": 98.0,
                                                 "reverse_kl": 0.02}},
             ("best", "grid", 0): {**run, "modes": 25.0, "high_quality": 99.0,
                                   "reverse_kl": 0.01, "spread": 0.5}}
    kept = study.table(found, ["best"], ["ring", "grid"], [0], study.BUDGET, view="rejection")
    assert kept.splitlines()[-1] == ("| best combination: experiment=gan_<dataset> | "
                                     "8.0 ± 0.0 | 98.0 ± 0.0 | 0.02 ± 0.00 | "
                                     "does not reject | — | — |")
    cells = study.per_cell(found, ["best"], ["ring", "grid"], [0]).splitlines()
    assert cells[2].startswith("| best | ring | 0 | 8 | 90.0 | 0.100 | — | 8, 98.0, 0.020 |")
    assert cells[3].startswith("| best | grid | 0 | 25 | 99.0 | 0.010 | 0.50 | — |")


@needs_proc
def test_sigterm_stops_the_worker_after_its_checkpoint_then_the_study(tmp_path):
    study, run, stderr = _start_study(tmp_path)
    try:
        worker = _training_worker(study, stderr)
        study.send_signal(signal.SIGTERM)
        assert study.wait(timeout=60) == 128 + signal.SIGTERM

        text = stderr.read_text()
        assert "Traceback" not in text
        assert ("mode_collapse.py: stopped by SIGTERM with 1 cell not reported back "
                "(ring/plain/seed0); running the same command again runs those left unfinished, "
                "resuming those that had started from their checkpoints.") in text.splitlines()
        # The study waited for its worker: gone, its run checkpointed, no cell file.
        assert not _alive(worker)
        assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] > 0
        assert not any((tmp_path / "cells").rglob("*.json"))
    finally:
        _kill_group(study)


@needs_proc
def test_sigterm_to_the_process_group_stops_every_worker_after_its_checkpoint(tmp_path):
    # What scancel, systemd and other supervisors send: SIGTERM to every process of the group at
    # once, the study and its workers. More workers than cells: the study stops the same
    # whether or not each of its processes has a cell.
    study, run, stderr = _start_study(tmp_path, seeds=2, workers=3)
    try:
        workers = _training_workers(study, stderr, 2)
        os.killpg(study.pid, signal.SIGTERM)
        assert study.wait(timeout=60) == 128 + signal.SIGTERM

        text = stderr.read_text()
        assert "Traceback" not in text
        assert ("mode_collapse.py: stopped by SIGTERM with 2 cells not reported back "
                "(ring/plain/seed0, ring/plain/seed1); running the same command again runs those "
                "left unfinished, resuming those that had started from their checkpoints."
                ) in text.splitlines()
        for worker in workers:
            assert not _alive(worker)
        for seed_run in (run, run.with_name("seed1")):
            assert load_checkpoint(seed_run / "checkpoints" / "last.pt")["step"] > 0
        assert not any((tmp_path / "cells").rglob("*.json"))
    finally:
        _kill_group(study)


@needs_proc
def test_a_worker_whose_study_is_killed_checkpoints_and_stops_by_itself(tmp_path):
    study, run, stderr = _start_study(tmp_path)
    try:
        worker = _training_worker(study, stderr)
        study.kill()                     # SIGKILL to the study's process alone
        study.wait(timeout=30)
        assert not _alive(worker, wait=20), "the worker trains on as an orphan"
        assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] > 0
        assert "Traceback" not in stderr.read_text()
    finally:
        _kill_group(study)


@needs_proc
def test_a_child_the_study_forked_is_its_worker_only_once_it_runs_a_program_of_its_own():
    # A process that catches SIGTERM, like the study, with a child forked and not exec'd (it
    # keeps that handler, as the study's children do until their exec) and a child that runs a
    # program of its own which catches SIGTERM, like the worker once it trains.
    own = ("import signal, time; signal.signal(signal.SIGTERM, lambda *_: None); print(flush=True);"
           " time.sleep(60)")
    code = f"""
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *_: None)
forked = os.fork()
if forked == 0:
    time.sleep(60)
    os._exit(0)
own = subprocess.Popen([sys.executable, "-c", {own!r}], stdout=subprocess.PIPE)
own.stdout.readline()
print(forked, own.pid, flush=True)
time.sleep(60)
"""
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        forked, own = map(int, parent.stdout.readline().split())
        assert _catches(forked, signal.SIGTERM) and not _is_training_worker(forked, parent.pid)
        assert _is_training_worker(own, parent.pid)
    finally:
        _kill_group(parent)


def test_the_stop_line_counts_the_cells_not_reported_back(monkeypatch, capsys):
    # In this process: the first result's `on_result` is interrupted by SIGTERM, which leaves
    # the other six jobs unreported whatever the workers had done. `abs` is a run_cell that the
    # spawned workers can unpickle.
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study_files = importlib.import_module("study_files")
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exited:
        study_files.run_cells(abs, [-1, -2, -3, -4, -5, -6, -7], 1, name=lambda job: f"c{-job}",
                              on_result=lambda result: os.kill(os.getpid(), signal.SIGTERM))
    assert exited.value.code == 128 + signal.SIGTERM
    assert capsys.readouterr().err.endswith(
        ": stopped by SIGTERM with 6 cells not reported back (c2, c3, c4, c5, c6, …); running the "
        "same command again runs those left unfinished, resuming those that had started from "
        "their checkpoints.\n")
    assert signal.getsignal(signal.SIGTERM) == handler    # restored


@pytest.mark.parametrize("sig", [
    signal.SIGTERM, pytest.param(signal.SIGINT, marks=needs_proc)])
def test_a_stop_while_the_workers_start_is_clean(monkeypatch, capfd, sig):
    # The signal reaches this process right after it starts the first worker, before it writes
    # that worker what it starts from; a Ctrl-C (SIGINT) reaches that worker too, once Python's
    # SIGINT handler is installed in it, while it waits to read.
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study_files = importlib.import_module("study_files")
    spawn, workers = multiprocessing.util.spawnv_passfds, []

    def spawn_then_signal(path, args, passfds):
        pid = spawn(path, args, passfds)
        if "--multiprocessing-fork" in args and not workers:   # a worker, not the tracker
            workers.append(pid)
            if sig == signal.SIGINT:
                _wait_until(lambda: _catches(pid, signal.SIGINT))
                os.kill(pid, signal.SIGINT)
            os.kill(os.getpid(), sig)
        return pid

    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", spawn_then_signal)
    with pytest.raises(SystemExit) as exited:
        study_files.run_cells(abs, [-1, -2], 2, name=lambda job: f"c{-job}", on_result=print)
    # run_cells waits for the processes it started; one it left running is waited for here,
    # for its output.
    for pid in workers:
        _reap(pid)
    err = capfd.readouterr().err
    assert exited.value.code == 128 + sig
    assert "Traceback" not in err, err
    assert err.endswith(f": stopped by {signal.Signals(sig).name} with 2 cells not reported back "
                        "(c1, c2); running the same command again runs those left unfinished, "
                        "resuming those that had started from their checkpoints.\n"), err


def _wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _reap(pid: int, timeout: float = 60) -> None:
    """Wait for child `pid` to exit unless it has been waited for; kill it after `timeout`."""
    deadline = time.monotonic() + timeout
    try:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"worker {pid} did not exit")
            time.sleep(0.05)
    except ChildProcessError:
        pass


def _start_study(tmp_path, seeds: int = 1, workers: int = 1):
    """The study on `seeds` long cells (seed 0's run directory is returned), in a process group
    of its own (`_kill_group` ends whatever is left of it); its stderr goes to a file, as a
    worker left running would keep a pipe open."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(SCRIPTS / "mode_collapse.py"), "--steps", "100000",
               "--datasets", "ring", "--configs", "plain", "--seeds", str(seeds),
               "--workers", str(workers),
               "--cells", str(tmp_path / "cells"), "--runs", str(tmp_path / "runs"),
               "--out", str(tmp_path / "table.md")]
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        study = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                 start_new_session=True)
    return study, tmp_path / "runs" / "ring" / "plain" / "seed0", stderr


def _training_worker(study, stderr: Path, timeout: float = 120) -> int:
    """The study's worker once gentool's training loop has installed its SIGTERM handler (no
    other code of the worker catches SIGTERM; multiprocessing's resource tracker ignores it)."""
    return _training_workers(study, stderr, 1, timeout)[0]


def _training_workers(study, stderr: Path, count: int, timeout: float = 120) -> list[int]:
    """`count` workers of the study, once each is a `_training_worker`."""
    deadline = time.monotonic() + timeout
    while True:
        assert study.poll() is None and time.monotonic() < deadline, stderr.read_text()
        workers = [pid for pid in _children(study.pid) if _is_training_worker(pid, study.pid)]
        if len(workers) >= count:
            return workers
        time.sleep(0.1)


def _is_training_worker(pid: int, study: int) -> bool:
    """Whether child `pid` of `study` runs a program of its own that catches SIGTERM. A child
    forked but not yet exec'd (a worker or the resource tracker being started) runs the
    study's program with the study's SIGTERM handler. Its command line is the study's until the
    exec, then empty until the exec sets the new one, which it does after resetting the
    handlers: a command line of its own, read first, means the handlers read next are its
    program's."""
    command = _command_line(pid)
    return command not in (None, b"", _command_line(study)) and _catches(pid, signal.SIGTERM)


def _command_line(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state, ppid, ...); None once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields is not None and fields[1] == str(pid):
            children.append(int(stat.parent.name))
    return children


def _catches(pid: int, sig: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (sig - 1) & 1)


def _alive(pid: int, wait: float = 5.0) -> bool:
    """Whether `pid` still runs after up to `wait` seconds. A zombie counts as gone: an orphan
    is reaped by whichever process adopted it, if that process reaps at all."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        fields = _stat(pid)
        if fields is None or fields[0] == "Z":
            return False
        time.sleep(0.1)
    return True


def _kill_group(study) -> None:
    try:
        os.killpg(study.pid, signal.SIGKILL)   # the study and any worker left
    except ProcessLookupError:
        pass
    study.wait()


@pytest.mark.parametrize("study_cell", ["mode_collapse"], indirect=True)
def test_a_run_that_diverged_is_written_as_a_failed_cell(study_cell, monkeypatch, tmp_path):
    import gentool.train

    study, job = study_cell.study, study_cell.job

    def diverge(cfg, run_dir):
        assert (cfg.seed, cfg.trainer.max_steps, run_dir) == (0, 4, str(study_cell.run_dir))
        raise TrainingDiverged("the loss became nan at step 3")
    monkeypatch.setattr(gentool.train, "run_train", diverge)
    result = study.run_cell(job)
    assert json.loads(study_cell.out.read_text()) == result
    assert list(result) == KEYS
    assert {key: result[key] for key in ("status", "modes", "high_quality", "reverse_kl",
                                         "spread")} == {
        "status": "the loss became nan at step 3", "modes": 0.0, "high_quality": 0.0,
        "reverse_kl": None, "spread": None}
    assert result["overrides"] == study.job_overrides("plain", "ring", 0, 4)
    study_files = importlib.import_module("study_files")
    assert (result["resumed_from_step"], result["torch_threads"], result["commit"]) == \
        (0, 1, study_files.commit())
    # It stays in the table: 0 modes, and its message beside the reverse KL.
    report = study.main(["--steps", "4", "--table-only", "--cells", str(tmp_path / "cells"),
                         "--out", str(tmp_path / "table.md")])
    assert "| plain | ring | 0 | 0 | 0.0 | — (the loss became nan at step 3) |" in report
    assert "| non-saturating GAN | 0.0 ± 0.0 (1/3 seeds) | 0.0 ± 0.0 | — | missing |" in report
