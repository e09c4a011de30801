"""Tier 3: the installed `gentool` command, from a wheel built from this tree, run in a
subprocess from a temporary directory (an editable install would hide missing package data).

The help, the everyday train-sample-eval path and an error exit start the console script in a
fresh interpreter, as a user does; the longer workflows run forked (conftest.forked): processes
of their own that skip the seconds of library imports."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from conftest import CLI_TINY, assert_user_error
from gentool.overrides import merged_overrides
from gentool.train import parameter_count


def test_the_wheel_carries_the_config_tree_and_is_what_runs(installed, tmp_path):
    found = subprocess.run([sys.executable, "-c", "import gentool, gentool.configs as c; "
                            "print(gentool.__file__); print(c.__file__)"], cwd=tmp_path,
                           env=installed["env"], capture_output=True, text=True, check=True)
    assert all(line.startswith(str(installed["site"])) for line in found.stdout.split())
    configs = installed["site"] / "gentool" / "configs"
    for name in ("train.yaml", "sample.yaml", "model/vae.yaml", "dataset/digits.yaml",
                 "loss/bernoulli.yaml", "optimizer/adam.yaml", "trainer/default.yaml"):
        assert (configs / name).is_file(), name


def test_python_dash_m_gentool_is_the_console_script(installed, tmp_path):
    ran = subprocess.run([sys.executable, "-m", "gentool", "--help"], cwd=tmp_path,
                         env=installed["env"], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert all(command in ran.stdout for command in ("train", "sample", "eval"))
    refused = subprocess.run([sys.executable, "-m", "gentool", "train", "seed=abc"],
                             cwd=tmp_path, env=installed["env"], capture_output=True, text=True)
    assert refused.returncode != 0
    assert "seed is 'abc' but must be an integer" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_help_lists_the_commands(gentool):
    result = gentool("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in ("train", "sample", "eval"))


def test_train_help_shows_config_groups_and_options(gentool):
    result = gentool("train", "--help")
    assert result.returncode == 0
    assert ("model: ae, ae_linear, cgan, conv_ae, conv_vae, dcgan, doc_ae, doc_vae, gan, pix2pix, "
            "vae" in result.stdout)
    assert ("dataset: cifar10, derived_pairs, digits, fashion_mnist, folder, frey_faces, grid, "
            "mnist, newsgroups20, paired_folder, ring, text_folder, vectors"
            in result.stdout)
    assert "dataset/pair: colorize, edges, inpaint" in result.stdout
    assert "_parts" not in result.stdout and "\nhydra" not in result.stdout
    assert "experiment: dcgan_fashion_mnist, gan_grid" in \
        result.stdout


def test_train_then_sample_from_any_directory(gentool, tmp_path):
    result = gentool("train", *CLI_TINY)
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "runs" / "train").glob("*/*"))
    assert len(runs) == 1
    run = runs[0]
    assert str(run.resolve()) in result.stderr + result.stdout  # "Run directory: ..." is logged
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "train.log").is_file()
    # The tiny VAE's 76,104 parameters, in a unit that shows them (not 0.08M).
    assert "Model vae: 76.1k parameters;" in (run / "train.log").read_text()
    assert json.loads((run / "metrics.json").read_text())["step"] == 4
    # A run directory stands for its checkpoints/last.pt.
    sampled = gentool("sample", f"checkpoint={run}", "n=16", "out=s.png", "device=cpu")
    assert sampled.returncode == 0, sampled.stderr
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluated = gentool("eval", f"checkpoint={run}/checkpoints/last.pt", "device=cpu",
                        "metrics=[likelihood,reconstruction]", "iwae_k=10")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "NLL bound IWAE k=10" in evaluated.stdout
    assert "eval/iwae_nll" in json.loads((run / "metrics.json").read_text())


def test_vectors_train_evaluate_and_compare_through_the_installed_command(forked_gentool, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    np.save(tmp_path / "x.npy", (np.eye(3)[labels] @ rng.normal(size=(3, 6)) * 3
                                 + rng.normal(size=(120, 6))).astype(np.float32))
    np.save(tmp_path / "y.npy", labels)
    data = ["dataset=vectors", "dataset.source.path=x.npy", "dataset.source.labels=y.npy",
            "dataset.shape=[6]", "dataset.num_classes=3", "loss=gaussian"]
    for model in ("ae", "vae"):
        trained = forked_gentool("train", f"model={model}", "model.latent_dim=2", *data, *CLI_TINY,
                                 f"hydra.run.dir={model}")
        assert trained.returncode == 0, trained.stderr
    # A run directory stands for its checkpoints/last.pt; the results go into that run.
    evaluated = forked_gentool("eval", "checkpoint=ae", "device=cpu",
                               "metrics=[representation]", "probe_examples=50")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "eval/retrieval_p1" in json.loads((tmp_path / "ae" / "metrics.json").read_text())
    assert not (tmp_path / "metrics.json").exists() and (tmp_path / "ae" / "eval").is_dir()
    compared = forked_gentool("compare", "ae", "vae", "--out", "codes.png")
    assert compared.returncode == 0, compared.stderr
    assert (tmp_path / "codes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_gives_pca_the_data_dimensions_when_the_code_is_larger(forked_gentool, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(60, 6)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.repeat(np.arange(3), 20))
    data = ["dataset=vectors", "dataset.source.path=x.npy", "dataset.source.labels=y.npy",
            "dataset.shape=[6]", "dataset.num_classes=3", "loss=gaussian"]
    # The default code (20-D) is larger than the vectors' 6 dimensions, and a 100-D code larger
    # than the 64 pixels of the 8 x 8 digits.
    runs = {"vae": ["model=vae", *data], "digits": ["model=ae", "model.latent_dim=100",
                                                      "dataset=digits"]}
    for name, overrides in runs.items():
        trained = forked_gentool("train", *overrides, *CLI_TINY, f"hydra.run.dir={name}")
        assert trained.returncode == 0, trained.stderr
    evaluated = forked_gentool("eval", "checkpoint=vae", "device=cpu", "probe_examples=40",
                               "metrics=[representation]")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "PCA 6 (all 6 input dimensions, an exact copy; the code has 20)" in evaluated.stdout
    metrics = json.loads((tmp_path / "vae" / "metrics.json").read_text())
    assert {"eval/linear_probe_pca", "eval/knn_pca", "eval/retrieval_p1_pca"} <= set(metrics)
    evaluated = forked_gentool("eval", "checkpoint=digits", "device=cpu",
                               "metrics=[reconstruction]")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "PCA, 64 components (all 64 input dimensions, an exact copy; the code has 100)" in \
        evaluated.stdout
    metrics = json.loads((tmp_path / "digits" / "metrics.json").read_text())
    assert metrics["eval/pca_mse"] < 1e-10     # 64 components of 64 pixels copy them exactly
    assert "eval/pca_bce" in metrics
    compared = forked_gentool("compare", "vae", "--out", "codes.png")
    assert compared.returncode == 0, compared.stderr


def test_a_gan_that_captures_no_mode_writes_standard_json_and_reports_a_dash(forked_gentool,
                                                                           tmp_path):
    def refuse(constant):
        raise ValueError(f"{constant} is not standard JSON")

    trained = forked_gentool("train", "experiment=gan_ring", "trainer.max_steps=20", "device=cpu",
                             "trainer.progress_bar=false", "hydra.run.dir=gan")
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((tmp_path / "gan" / "metrics.json").read_text(), parse_constant=refuse)
    # 20 steps capture no mode: the reverse KL over high-quality samples is undefined.
    assert metrics["test/modes"] == 0 and metrics["test/reverse_kl"] is None
    reported = forked_gentool("report", "gan", "--metrics", "test/modes", "test/reverse_kl")
    assert reported.returncode == 0, reported.stderr
    assert reported.stdout.splitlines()[2] == "| 1 | 0 | — |"


def test_compare_help_gives_the_defaults(gentool):
    result = gentool("compare", "--help")
    assert result.returncode == 0
    assert "the PNG to write (default: compare.png)" in " ".join(result.stdout.split())


def test_eval_help_names_the_suites(gentool):
    result = gentool("eval", "--help")
    assert result.returncode == 0
    assert "likelihood" in result.stdout and "representation" in result.stdout


def test_multirun_sweep_writes_one_directory_per_job(forked_gentool, tmp_path):
    result = forked_gentool("train", "-m", "model=vae,ae", "seed=0,1", *CLI_TINY)
    assert result.returncode == 0, result.stderr
    jobs = sorted((tmp_path / "multirun" / "train").glob("*/*/*/metrics.json"))
    assert len(jobs) == 4
    table = forked_gentool("report", str(tmp_path / "multirun"), "--metrics", "test/loss",
                           "--out", "table.md")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "| model | n | test/loss |" and len(lines) == 4
    assert lines[2].startswith("| ae | 2 | ") and lines[3].startswith("| vae | 2 | ")
    assert (tmp_path / "table.md").read_text().splitlines() == lines
    # A job of the sweep again in its own folder (as a requeued SLURM job reruns it): its
    # multirun.yaml is a train sweep's.
    sweep = next((tmp_path / "multirun" / "train").glob("*/*"))
    again = forked_gentool("train", "-m", "model=vae", "seed=0", *CLI_TINY,
                           f"hydra.sweep.dir={sweep}")
    assert again.returncode == 0, again.stderr


def test_parallel_launcher_runs_the_sweep_in_separate_processes(forked_gentool, tmp_path):
    result = forked_gentool("train", "-m", "hydra/launcher=parallel", "model=vae,ae", *CLI_TINY)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "multirun" / "train").glob("*/*/*/checkpoints/last.pt"))) == 2
    assert "Joblib.Parallel" in result.stdout + result.stderr


def test_finetune_sweeps_over_labels_per_class(forked_gentool, tmp_path):
    trained = forked_gentool("train", "model=ae", *CLI_TINY, "hydra.run.dir=ae")
    assert trained.returncode == 0, trained.stderr
    result = forked_gentool("finetune", "-m", f"checkpoint={tmp_path}/ae/checkpoints/last.pt",
                            "labels_per_class=1,2", "finetune.steps=10", "device=cpu")
    assert result.returncode == 0, result.stderr
    table = forked_gentool("report", str(tmp_path / "multirun" / "finetune"), "--metrics",
                           "test/accuracy", "test/accuracy_scratch", "test/accuracy_control")
    assert table.stdout.splitlines()[0] == \
        "| labels_per_class | n | test/accuracy | test/accuracy_scratch | test/accuracy_control |"
    # The same sweep again in its own folder: its multirun.yaml is a finetune sweep's.
    sweep = next((tmp_path / "multirun" / "finetune").glob("*/*"))
    again = forked_gentool("finetune", "-m", f"checkpoint={tmp_path}/ae", "labels_per_class=1",
                           "finetune.steps=10", "device=cpu", f"hydra.sweep.dir={sweep}")
    assert again.returncode == 0, again.stderr


def test_user_config_folder_on_the_search_path(forked_gentool, tmp_path):
    folder = tmp_path / "my_configs" / "model"
    folder.mkdir(parents=True)
    (folder / "tiny_vae.yaml").write_text("defaults:\n  - vae\n\nname: tiny_vae\nlatent_dim: 2\n")
    result = forked_gentool("train", f"hydra.searchpath=[file://{tmp_path / 'my_configs'}]",
                            "model=tiny_vae", *CLI_TINY)
    assert result.returncode == 0, result.stderr
    assert "Model tiny_vae" in result.stderr + result.stdout


# The other refusals of bad input (options, checkpoints, data, report files) are a table in
# test_bad_inputs.py.


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(gentool, tmp_path):
    result = gentool("train", "optimizer.lr=1e30",
                     *merged_overrides(*CLI_TINY, "trainer.max_steps=50", "trainer.log_every=1",
                                       "trainer.checkpoint_every=1", "trainer.eval_every=50",
                                       "hydra.run.dir=run"))
    assert_user_error(result, "gentool: error: training diverged", "is kept")
    kept = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)
    assert 1 <= kept["step"] < 50


def test_parameter_counts_read_in_a_unit_that_fits():
    counts = {0: "0", 512: "512", 999: "999", 1_000: "1.00k", 2_100: "2.10k", 9_994: "9.99k",
              9_996: "10.0k", 76_104: "76.1k", 99_949: "99.9k", 99_951: "100k",
              999_499: "999k", 999_501: "1.00M", 999_999: "1.00M", 1_120_000: "1.12M",
              25_000_000: "25.0M", 999_499_999: "999M", 999_999_999: "1.00G",
              1_000_000_000: "1.00G", 3_456_789_012: "3.46G", 1_234_000_000_000: "1230G"}
    assert {n: parameter_count(n) for n in counts} == counts
