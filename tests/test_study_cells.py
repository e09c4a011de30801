"""What each study script does with a cell through scripts/study_files.py, once per script
(the `study_cell` fixture): a run stopped by a signal writes no cell file and is reported; the
next sitting resumes it from its checkpoint and writes the file, which the tables show as resumed;
a cell that has its file is not run again; a stop before the cells start ends the study with
one line."""

import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gentool.engine.checkpoint import load_checkpoint
from study_helpers import SCRIPTS

# The study script named by argv[1], run as `python <script> <arguments>` would run it, with
# study_files.run_cells replaced by a stand-in that says so on stdout and waits: the script
# stays in what it does before its cells start, with the handlers it installed for that.
WAIT_BEFORE_CELLS = """
import runpy, sys, time
import study_files

def wait(*args, **kwargs):
    print("cells next", flush=True)
    time.sleep(60)

study_files.run_cells = wait
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_stopped_cell_is_resumed_by_the_next_sitting_then_skipped(study_cell, capsys,
                                                                    sigterm_during_step):
    # The first sitting, in this process: the run signals itself during its second step, so
    # gentool's loop checkpoints step 2 and stops (as a worker does on the study's SIGTERM).
    with sigterm_during_step(1) as steps:
        stopped = study_cell.study.run_cell(study_cell.job)
    checkpoint = study_cell.run_dir / "checkpoints" / "last.pt"
    assert steps.unhandled == []
    assert stopped == {**study_cell.names,
                       "interrupted": f"stopped at step 2 by SIGTERM; checkpoint {checkpoint}"}
    assert load_checkpoint(checkpoint)["step"] == 2
    assert not study_cell.out.exists()

    # The next sitting, through the command line and its workers: the cell resumes at step 2.
    report = study_cell.report(study_cell.study.main(study_cell.argv))
    assert "1 cells to run, 1 at a time" in capsys.readouterr().out
    cell = json.loads(study_cell.out.read_text())
    assert (cell["status"], cell["steps"], cell["resumed_from_step"]) == ("finished", 4, 2)
    assert load_checkpoint(checkpoint)["step"] == 4
    assert "(resumed at 2) |" in report

    # A cell that has its file is skipped: nothing trains and the file is left alone.
    stamp = study_cell.out.stat().st_mtime_ns
    assert study_cell.report(study_cell.study.main(study_cell.argv)) == report
    assert "0 cells to run, 1 at a time" in capsys.readouterr().out
    assert study_cell.out.stat().st_mtime_ns == stamp


def gives_line(stream, expected: str, timeout: float) -> bool:
    """Whether `stream` gives the line `expected` within `timeout` seconds, read in a thread of
    its own: a script that hangs before it fails the test rather than holding it."""
    lines: queue.Queue = queue.Queue()

    def read():
        for line in stream:
            lines.put(line)
        lines.put(None)   # the stream ended

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            return False
        if line == expected:
            return True
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda sig: sig.name)
def test_a_stop_before_the_cells_start_ends_the_study_with_one_line(study_cell, sig, tmp_path):
    script = Path(study_cell.study.__file__)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SCRIPTS.parent / "src"), str(SCRIPTS)])}
    stderr = tmp_path / "stderr"   # a file: stdout's pipe is read by a thread of its own
    with stderr.open("w") as err_file:
        study = subprocess.Popen([sys.executable, "-c", WAIT_BEFORE_CELLS, str(script),
                                  *study_cell.argv], env=env, stdout=subprocess.PIPE,
                                 stderr=err_file, text=True)
    try:
        # Generous: the script imports torch on cores a study may be using.
        if not gives_line(study.stdout, "cells next\n", timeout=120):
            study.kill()
            study.wait()
            pytest.fail("the script did not reach its cells: " + stderr.read_text())
        study.send_signal(sig)
        study.wait(timeout=60)
    finally:
        if study.poll() is None:
            study.kill()
            study.wait()
    err = stderr.read_text()
    assert study.returncode == 128 + sig, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == (
        f"{script.name}: stopped by {sig.name} before any cell started; no cell file or "
        "checkpoint was changed, and running the same command again runs the cells left to run.")


def test_a_study_that_runs_no_cell_still_ends_its_stop_before_them(study_cell):
    # --table-only: a stop while the tables are written is not one before the cells, whose line
    # says the same command runs the cells left to run.
    study_files = importlib.import_module("study_files")
    original = {sig: signal.getsignal(sig) for sig in study_files.STOP_SIGNALS}
    try:
        study_files.stop_cleanly_before_cells()
        study_cell.study.main([*study_cell.argv, "--table-only"])
        assert {sig: signal.getsignal(sig) for sig in study_files.STOP_SIGNALS} == original
    finally:
        study_files.end_stop_before_cells()
        for sig, handler in original.items():
            signal.signal(sig, handler)
