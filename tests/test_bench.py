"""Smoke tests of scripts/bench.py: a few steps of each loop on random images; never timing."""

import importlib.util
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("gentool_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_runs_the_three_loops_and_prints_the_ratios(capsys):
    bench = _load_bench()
    threads = torch.get_num_threads()
    try:
        result = bench.main(["--device", "cpu", "--random", "--images", "1024", "--limit-steps",
                             "3", "--warmup-steps", "1", "--workers", "0", "--sections", "vae"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    names = ["gentool (run_train)", "bare tensor loop", "DataLoader + ToTensor (workers=0)"]
    assert "random uint8 images, 1024 x 1x28x28" in out
    assert "| loop | images/s | ratio to bare loop |" in out
    for name in names:
        assert f"| {name} | " in out
    assert "| bare tensor loop | " in out and " | 1.00 |" in out
    assert "gentool / bare = " in out and "gentool / DataLoader = " in out
    assert "gentool run_train end to end: " in out
    assert result["steps"] == 3
    assert set(result["images_per_second"]) == set(names)
    assert all(rate > 0 for rate in result["images_per_second"].values())
    assert set(result["checks"]) == {"gentool / bare", "gentool / DataLoader"}


def test_bench_times_both_gan_presets_against_a_bare_loop(capsys):
    bench = _load_bench()
    threads = torch.get_num_threads()
    try:
        result = bench.main(["--device", "cpu", "--random", "--images", "512", "--sections", "gan",
                             "--gan-steps", "3", "--dcgan-steps", "2", "--warmup-steps", "1",
                             "--repeats", "2"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    labels = list(bench.GAN_PRESETS)
    assert "| GAN preset | steps | gentool ms/step (CPU) | bare ms/step (CPU) |" in out
    for label in labels:
        assert f"| {label} | " in out and f"{label} gentool / bare = " in out
        timing = result["gan"][label]
        assert timing["ratio"] == timing["cpu_ratio"] > 0      # judged on CPU time on a CPU
        assert all(timing["per_step"][loop]["seconds"] > 0 for loop in ("gentool", "bare"))
    assert result["gan"][labels[0]]["steps"] == 3 and result["gan"][labels[1]]["steps"] == 2
    assert "gentool / bare = " not in out.split("GAN preset")[0]  # no VAE section was run

