"""`gentool report`: grouping runs by the overrides that differ, mean ± std over seeds."""

import json

import pytest

from gentool.errors import GentoolError
from gentool.report import report


def write_run(folder, overrides, metrics):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides)
                                                      or "[]\n")   # as Hydra writes none
    (folder / "metrics.json").write_text(json.dumps({"step": 10, **metrics}))


@pytest.fixture
def sweep(tmp_path):
    """A 2 x 3 sweep model=vae,ae seed=0,1,2 with one fixed override, as Hydra lays it out."""
    values = {("vae", 0): 1.0, ("vae", 1): 2.0, ("vae", 2): 3.0,
              ("ae", 0): 10.0, ("ae", 1): 10.0, ("ae", 2): 13.0}
    for job, ((model, seed), loss) in enumerate(values.items()):
        write_run(tmp_path / "multirun" / str(job), [f"model={model}", f"seed={seed}",
                                                      "trainer.max_steps=10"],
                  {"test/loss": loss, "test/kl": 0.5})
    return tmp_path / "multirun"


def test_rows_are_the_differing_overrides_with_mean_and_std_over_seeds(sweep):
    lines = report([str(sweep)]).splitlines()
    assert lines[0] == "| model | n | test/kl | test/loss |"
    # ae: mean 11, sample std sqrt(((1)^2 + 1^2 + 2^2) / 2) = sqrt(3) = 1.7; vae: 2 ± 1
    assert lines[2] == "| ae | 3 | 0.5 ± 0 | 11 ± 1.7 |"
    assert lines[3] == "| vae | 3 | 0.5 ± 0 | 2 ± 1 |"


def test_chosen_metrics_and_eval_keys_first(sweep, tmp_path):
    assert report([str(sweep)], ["test/loss"]).splitlines()[0] == "| model | n | test/loss |"
    run = sweep / "0"
    run.joinpath("metrics.json").write_text(json.dumps({"test/loss": 1.0, "eval/fd": 4.0}))
    assert "eval/fd" in report([str(sweep)]).splitlines()[0]


def test_every_metric_key_is_listed_as_typed():
    from gentool.report import metric_keys

    keys = [f"eval/m{i:02d}" for i in range(12)] + ["step_time", "test/loss"]
    assert metric_keys(keys) == (", ".join(f"eval/m{i:02d}" for i in range(12)) +
                                 ", step_time, test/loss")


def test_every_unknown_metric_gets_its_closest_key(sweep):
    (sweep / "0" / "metrics.json").write_text(json.dumps({"eval/fd": 4.0, "test/loss": 1.0}))
    with pytest.raises(GentoolError) as refusal:
        report([str(sweep)], ["test/los", "eval/fdd", "test/loss"])
    assert str(refusal.value).startswith(
        "no run has the metrics test/los, eval/fdd; did you mean test/loss (for test/los) and "
        "eval/fd (for eval/fdd)? (the runs have ")


def write_saved_config(folder, choices, config):
    """The `.hydra/hydra.yaml` group choices and `.hydra/config.yaml` values a run used."""
    (folder / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n" + "".join(f"      {k}: {v}\n"
                                                     for k, v in choices.items()))
    (folder / ".hydra" / "config.yaml").write_text(config)


def test_a_key_left_at_its_default_is_labelled_with_the_value_the_run_used(tmp_path):
    config = "model:\n  name: vae\n  latent_dim: 16\ntrainer:\n  progress_bar: true\n"
    runs = {"default": ([], 1.0), "vae": (["model=vae"], 3.0), "ae": (["model=ae"], 10.0),
            "small": (["model.latent_dim=4", "trainer.progress_bar=false"], 20.0)}
    for name, (overrides, loss) in runs.items():
        write_run(tmp_path / name, overrides, {"test/loss": loss})
        write_saved_config(tmp_path / name, {"model": "vae", "dataset": "digits"}, config)
    lines = report([str(tmp_path)]).splitlines()
    assert lines[0] == "| model | model.latent_dim | trainer.progress_bar | n | test/loss |"
    # the default run and model=vae used the same model: one row of two runs
    assert lines[2:] == ["| ae | 16 | true | 1 | 10 |", "| vae | 16 | true | 2 | 2 ± 1.4 |",
                         "| vae | 4 | false | 1 | 20 |"]


def test_runs_without_overrides_get_a_row_each(tmp_path):
    for name, value in (("a", 1.0), ("b", 2.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"test/loss": value}))
    assert report([str(tmp_path)]).splitlines()[2:] == ["| a | 1 | 1 |", "| b | 1 | 2 |"]


def test_an_undefined_metric_is_missing_in_its_row(tmp_path):
    # null is what gentool writes for an undefined metric; NaN what files written before hold.
    texts = {"a": '{"test/modes": 0.0, "test/reverse_kl": null}',
             "b": '{"test/modes": 3.0, "test/reverse_kl": NaN}',
             "c": '{"test/modes": 8.0, "test/reverse_kl": 0.5}'}
    for name, text in texts.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(text)
    assert report([str(tmp_path)], ["test/modes", "test/reverse_kl"]).splitlines()[2:] == [
        "| a | 1 | 0 | — |", "| b | 1 | 3 | — |", "| c | 1 | 8 | 0.5 |"]
    # In a row of seeds, the mean is over the runs that have the metric.
    (tmp_path / "c" / "metrics.json").write_text('{"test/reverse_kl": null}')
    assert report([str(tmp_path / "c")], ["test/reverse_kl"]).splitlines()[2] == "| 1 | — |"


def test_a_mean_over_some_of_a_rows_runs_says_over_how_many(tmp_path):
    for seed, kl in ((0, 0.4), (1, None), (2, 0.6)):
        write_run(tmp_path / f"s{seed}", ["model=gan", f"seed={seed}"],
                  {"test/modes": 8.0, "test/reverse_kl": kl})
    assert report([str(tmp_path)], ["test/modes", "test/reverse_kl"]).splitlines()[2] == \
        "| 3 | 8 ± 0 | 0.5 ± 0.14 (2 of 3) |"


def test_the_metrics_file_is_standard_json_with_null_for_undefined_metrics(tmp_path):
    from gentool.engine.run_metrics import write_metrics

    def refuse(constant):
        raise ValueError(f"{constant} is not standard JSON")

    write_metrics(tmp_path, {"test/modes": 0.0, "test/reverse_kl": float("nan"),
                             "test/spread": float("inf")})
    (tmp_path / "old.json").write_text((tmp_path / "metrics.json").read_text())
    write_metrics(tmp_path, {"eval/fd": float("-inf"), "eval/nested": [1.0, float("nan")]},
                  merge=True)
    assert json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse) == {
        "test/modes": 0.0, "test/reverse_kl": None, "test/spread": None, "eval/fd": None,
        "eval/nested": [1.0, None]}


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "no metrics.json under"),
])
def test_bad_paths_are_clear_errors(tmp_path, setup, message):
    target = tmp_path / "runs"
    setup(target)
    with pytest.raises(GentoolError, match=message):
        report([str(target)])


def test_unknown_metric_and_corrupt_file_are_clear_errors(sweep):
    with pytest.raises(GentoolError, match="no run has the metric"):
        report([str(sweep)], ["eval/nope"])
    (sweep / "0" / "metrics.json").write_text(json.dumps({"eval/fd": 4.0, "test/loss": 1.0}))
    # Every key the runs have is listed, by prefix, with the closest match to the one asked for
    # (not just the eval/* keys a default table would show).
    with pytest.raises(GentoolError) as refusal:
        report([str(sweep)], ["test/los"])
    assert str(refusal.value) == ("no run has the metric test/los; did you mean test/loss? (the "
                                  "runs have eval/fd, test/kl, test/loss).")
    with pytest.raises(GentoolError, match=r"no run has the metric test/nope \(the runs have "):
        report([str(sweep)], ["test/nope"])
    # A key typed with more after a known one is offered that key.
    with pytest.raises(GentoolError, match=r"test/loss_typo; did you mean test/loss\? "):
        report([str(sweep)], ["test/loss_typo"])
    (sweep / "0" / "metrics.json").write_text("{")
    with pytest.raises(GentoolError, match="is not valid JSON"):
        report([str(sweep)])


def test_spellings_of_one_value_are_one_row(tmp_path):
    # Hydra reads 1e-3 and 0.001 as one value, and the default a run read from its saved config
    # equals the same value given on the command line; the row keeps the first run's spelling.
    runs = {"a": (["optimizer.lr=1e-3", "seed=0"], 1.0),
            "b": (["optimizer.lr=0.001", "seed=1"], 3.0),
            "c": ([], 5.0), "d": (["optimizer.lr=1e-2"], 10.0)}
    for name, (overrides, loss) in runs.items():
        write_run(tmp_path / name, overrides, {"test/loss": loss})
        write_saved_config(tmp_path / name, {"optimizer": "adam"}, "optimizer:\n  lr: 0.001\n")
    lines = report([str(tmp_path)]).splitlines()
    assert lines[0] == "| optimizer.lr | n | test/loss |"
    assert lines[2:] == ["| 1e-2 | 1 | 10 |", "| 1e-3 | 3 | 3 ± 2 |"]


SAVED = ("model:\n  latent_dim: 8\n  hidden: ${model.latent_dim}\n"
         "data_dir: ${oc.env:GENTOOL_DATA_DIR,data}\n")


def test_interpolations_are_labelled_with_the_value_the_run_used(tmp_path, monkeypatch):
    for name, overrides, loss in (("b", ["model.hidden=4", "data_dir=/data"], 2.0),
                                  ("c", [], 3.0)):
        write_run(tmp_path / name, overrides, {"test/loss": loss})
        write_saved_config(tmp_path / name, {"model": "vae"}, SAVED)
    # The run's environment was not saved, so the value today's environment gives is not shown.
    monkeypatch.setenv("GENTOOL_DATA_DIR", "/somewhere/else")
    lines = report([str(tmp_path)]).splitlines()
    assert lines[0] == "| data_dir | model.hidden | n | test/loss |"
    assert lines[2:] == ["| ${oc.env:GENTOOL_DATA_DIR,data} (unresolved) | 8 | 1 | 3 |",
                         "| /data | 4 | 1 | 2 |"]


def test_an_interpolation_given_on_the_command_line_is_resolved_as_saved(tmp_path):
    # Hydra saves the override as typed and the config with the interpolation in place.
    write_run(tmp_path / "a", ["model.hidden=${model.latent_dim}", "data_dir=${oc.env:HOME}"],
              {"test/loss": 1.0})
    write_saved_config(tmp_path / "a", {"model": "vae"},
                       SAVED.replace("GENTOOL_DATA_DIR,data", "HOME"))
    write_run(tmp_path / "b", ["model.hidden=4", "data_dir=/data"], {"test/loss": 3.0})
    assert report([str(tmp_path)]).splitlines()[2:] == [
        "| ${oc.env:HOME} (unresolved) | 8 | 1 | 1 |", "| /data | 4 | 1 | 3 |"]


def test_a_key_a_run_does_not_have_is_apart_from_null(tmp_path):
    # Without a saved config, the run that set nothing has no value for x: not the null set here.
    for name, overrides, loss in (("a", ["+x=null"], 1.0), ("b", ["+x=1"], 2.0), ("c", [], 3.0)):
        write_run(tmp_path / name, overrides, {"test/loss": loss})
    assert report([str(tmp_path)]).splitlines()[2:] == [
        "|  | 1 | 3 |", "| 1 | 1 | 2 |", "| null | 1 | 1 |"]


@pytest.mark.parametrize("overrides,saved,label", [
    ([r"s=\${x}"], None, "${x}"),                                    # no saved config
    ([r"s=\${x}"], "x: 1\ns: \\${x}\n", "${x}"),                     # as Hydra saves it
    ([], "x: 1\ns: \\${x}\n", "${x}"),                               # the default
    (["s=${y}"], "y: \\${oc.env:HOME}\ns: ${y}\n", "${oc.env:HOME}"),  # an escape it reaches
])
def test_an_escaped_interpolation_is_the_text_it_stands_for(tmp_path, overrides, saved, label):
    write_run(tmp_path / "a", overrides, {"test/loss": 1.0})
    if saved is not None:
        write_saved_config(tmp_path / "a", {}, saved)
    write_run(tmp_path / "b", ["s=text"], {"test/loss": 2.0})
    assert report([str(tmp_path)]).splitlines()[2:] == [f"| {label} | 1 | 1 |",
                                                        "| text | 1 | 2 |"]


def test_values_that_print_alike_are_rows_apart_with_the_string_quoted(tmp_path):
    # The override x=1 is a number, the saved default '1' a string: two values that would both
    # show as 1. The two rows sit together, in the order of the values as they print.
    for name, overrides, config, loss in (("a", ["x=1"], "x: 1\n", 1.0),
                                          ("b", [], "x: '1'\n", 2.0),
                                          ("c", ["x=0.5"], "x: 0.5\n", 3.0),
                                          ("d", ["x=2"], "x: 2\n", 4.0)):
        write_run(tmp_path / name, overrides, {"test/loss": loss})
        write_saved_config(tmp_path / name, {}, config)
    assert report([str(tmp_path)]).splitlines() == [
        "| x | n | test/loss |", "|---|---|---|", "| 0.5 | 1 | 3 |", '| "1" | 1 | 2 |',
        "| 1 | 1 | 1 |", "| 2 | 1 | 4 |"]


def test_only_labels_that_print_alike_quote_their_strings_where_they_differ(tmp_path):
    # a and b differ only in the type of x (true, 'true'); c and d only in whether y is set
    # (no value, a default ''); e prints apart from them all. The column the alike rows share
    # (model) and every other row keep their labels.
    for name, overrides, config, loss in (
            ("a", ["model=vae", "x=true", "y=k"], "x: true\n", 1.0),
            ("b", ["model=vae", "y=k"], "x: 'true'\n", 2.0),
            ("c", ["model=ae", "x=s"], "y: ''\n", 3.0),
            ("d", ["model=ae", "x=s"], "", 4.0),
            ("e", ["model=ae", "x=t", "y=k"], "", 5.0)):
        write_run(tmp_path / name, overrides, {"test/loss": loss})
        write_saved_config(tmp_path / name, {}, config)
    assert report([str(tmp_path)]).splitlines()[2:] == [
        "| ae | s |  | 1 | 4 |", '| ae | s | "" | 1 | 3 |', "| ae | t | k | 1 | 5 |",
        '| vae | "true" | k | 1 | 2 |', "| vae | true | k | 1 | 1 |"]


def test_a_pipe_in_a_label_is_escaped_in_the_table(tmp_path):
    write_run(tmp_path / "a", ["x='a|b'"], {"test/loss": 1.0})
    write_run(tmp_path / "b", ["x=c"], {"test/loss": 2.0})
    assert report([str(tmp_path)]).splitlines()[2:] == ["| 'a\\|b' | 1 | 1 |",
                                                         "| c | 1 | 2 |"]


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    """Run folders r_a and r_b and an existing folder that holds no run, in the working folder."""
    for name in ("r_a", "r_b"):
        write_run(tmp_path / name, ["seed=0"], {"test/loss": 1.0})
    (tmp_path / "plots").mkdir()
    monkeypatch.chdir(tmp_path)


def test_the_run_folders_at_the_end_of_metrics_are_the_paths(two_runs):
    from gentool.cli import report_paths

    assert report_paths([], ["test/loss", "r_a", "r_b"]) == (["r_a", "r_b"], ["test/loss"])
    # after paths given before --metrics too
    assert report_paths(["r_a"], ["test/loss", "r_b"]) == (["r_a", "r_b"], ["test/loss"])
    assert report_paths(["r_a"], ["test/loss"]) == (["r_a"], ["test/loss"])


def test_an_existing_folder_that_holds_no_run_stays_a_metric_word(two_runs):
    from gentool.cli import report_paths

    with pytest.raises(GentoolError, match=r"^no run folder given \(--metrics took test/loss, "
                                           r"plots as metric keys\)"):
        report_paths([], ["test/loss", "plots"])


def test_a_mistyped_folder_after_a_run_folder_is_named(two_runs):
    from gentool.cli import report_paths

    with pytest.raises(GentoolError, match="^r_dd does not exist; give run directories"):
        report_paths([], ["test/loss", "r_a", "r_dd"])
    with pytest.raises(GentoolError, match="^no metrics.json under plots;"):
        report_paths([], ["test/loss", "r_a", "plots", "r_b"])


def test_report_with_out_does_without_torch(sweep, tmp_path):
    """`gentool report` reads JSON and YAML only; checking and writing --out must not pull in
    torch (seconds of start-up) through the checkpoint module."""
    import subprocess
    import sys

    out = tmp_path / "table.md"
    code = ("import sys\n"
            "from gentool.cli import report_main\n"
            f"sys.argv = ['gentool report', {str(sweep)!r}, '--out', {str(out)!r}]\n"
            "report_main()\n"
            "assert 'torch' not in sys.modules, 'gentool report imported torch'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("| model | n |")
