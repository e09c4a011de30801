"""The mode-collapse study script end to end on a tiny budget (no claims about the figures):
one file per cell, finished cells skipped, the table rebuilt from the files with the missing
cells marked; SIGTERM stops its workers with their checkpoints written."""

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gentool.config import check_config
from gentool.engine.checkpoint import load_checkpoint
from gentool.methods import build_method, check_method

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SRC = SCRIPTS.parent / "src"


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
    assert set(cell) >= {"modes", "high_quality", "reverse_kl", "seconds", "cpu_seconds"}
    assert "| non-saturating GAN | " in report and "| PacGAN, m=2 | " in report
    assert "4 of 4 cells finished." in report
    assert "rejects draws by the discriminator's score" in report
    assert "| GAN (PacGAN paper) | 6.3 | 98.2 | 0.45 |" in report

    # Done cells are skipped: a second run trains nothing and leaves the files alone.
    stamps = [c.stat().st_mtime_ns for c in cells]
    study.main([*common, "--seeds", "2", "--workers", "1", "--configs", "plain", "pack2"])
    assert [c.stat().st_mtime_ns for c in cells] == stamps

    # The table alone, asked for a third seed and another configuration: marked missing.
    (tmp_path / "table.md").write_text("# notes kept\n\nintro\n\n" + study.BEGIN + "\nold\n" +
                                       study.END + "\n\nafter\n")
    report = study.main([*common, "--seeds", "3", "--configs", "plain", "r1", "--table-only"])
    assert "| non-saturating GAN | " in report and "(2/3 seeds)" in report
    assert "| R1, gamma=0.1 | missing | missing | missing |" in report
    assert "| r1 | ring | 2 | missing |" in report and "2 of 6 cells finished, 4 missing." in report
    text = (tmp_path / "table.md").read_text()
    assert text.startswith("# notes kept\n\nintro\n\n") and text.endswith("\n\nafter\n")
    assert "\nold\n" not in text

    # A cell file of a further seed (a preset checked on more seeds) joins its row and the
    # per-cell table without counting against the cells asked for.
    plain = tmp_path / "cells" / "ring" / "plain"
    (plain / "seed5.json").write_text((plain / "seed0.json").read_text())
    report = study.main([*common, "--seeds", "2", "--configs", "plain", "--table-only"])
    assert "| non-saturating GAN | " in report and "(3 seeds)" in report
    assert "| plain | ring | 5 | " in report
    assert "2 of 2 cells finished. Also included: 1 cell of further seeds." in report


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
            assert sum(p.numel() for p in build_method(cfg).parameters()) > 0, (config, dataset)
    mbd = study.job_overrides("mbd", "ring", seed=0, steps=100)
    assert "model.discriminator.minibatch_discrimination={num_kernels:50,kernel_dim:5}" in mbd


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


def test_sigterm_stops_the_worker_after_its_checkpoint_then_the_study(tmp_path):
    runs, cells = tmp_path / "runs", tmp_path / "cells"
    run = runs / "ring" / "plain" / "seed0"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(SCRIPTS / "mode_collapse.py"), "--steps", "100000",
               "--datasets", "ring", "--configs", "plain", "--seeds", "1", "--workers", "1",
               "--cells", str(cells), "--runs", str(runs), "--out", str(tmp_path / "table.md")]
    stderr = tmp_path / "stderr.txt"
    # Output to files: a worker left running would keep pipes open.
    with open(stderr, "w") as err:
        study = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    worker = None
    try:
        # The run's TensorBoard file, events.out.tfevents.<time>.<host>.<pid>.0, names the
        # worker; the training loop installs its SIGTERM handler a few ms after creating it.
        deadline = time.monotonic() + 120
        while worker is None:
            assert study.poll() is None and time.monotonic() < deadline, stderr.read_text()
            events = sorted(run.glob("events.out.tfevents.*"))
            worker = int(events[0].name.split(".")[-2]) if events else None
            time.sleep(0.1)
        time.sleep(1)
        study.send_signal(signal.SIGTERM)
        assert study.wait(timeout=60) == 128 + signal.SIGTERM

        text = stderr.read_text()
        assert "Traceback" not in text
        assert ("mode_collapse.py: stopped by SIGTERM: ring/plain/seed0; running the same "
                "command again resumes them from their checkpoints.") in text.splitlines()
        # The study waited for its worker: gone (reaped), its run checkpointed, no cell file.
        assert not _alive(worker)
        assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] > 0
        assert not cells.exists() or not any(cells.rglob("*.json"))
    finally:
        if study.poll() is None:
            study.kill()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def _alive(pid: int, wait: float = 5.0) -> bool:
    """Whether `pid` still exists after up to `wait` seconds (an orphan's exit is reaped by
    init, a moment later)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    return True
