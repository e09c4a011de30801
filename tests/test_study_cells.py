"""What each study script does with a cell through scripts/study_files.py, once per script
(the `study_cell` fixture): a run stopped by a signal writes no cell file and is reported; the
next sitting resumes it from its checkpoint and writes the file, which the tables show as resumed;
a cell that has its file is not run again."""

import json

from gentool.engine.checkpoint import load_checkpoint


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
