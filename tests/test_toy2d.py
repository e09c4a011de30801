"""The toy 2-D mixtures (ring, grid), their batchers and the mode-collapse metrics, by hand."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from conftest import compose_config
from gentool.data import Data, build_data
from gentool.data.toy2d import (PointBatches, PointData, grid_centres, load_grid, load_ring,
                                ring_centres)
from gentool.errors import GentoolError
from gentool.metrics.modes import mode_metrics

R = math.sqrt(0.5)   # cos 45 deg = sin 45 deg


def take(iterator, count):
    return list(itertools.islice(iterator, count))


# --- centres and sources -------------------------------------------------------------------------

def test_ring_centres_are_evenly_spaced_on_the_unit_circle():
    expected = torch.tensor([[1, 0], [R, R], [0, 1], [-R, R], [-1, 0], [-R, -R], [0, -1], [R, -R]])
    centres = ring_centres()
    assert centres.dtype == torch.float32 and centres.shape == (8, 2)
    assert torch.allclose(centres, expected.float(), atol=1e-7)
    assert torch.allclose(ring_centres(4, radius=2.0), torch.tensor(
        [[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]]), atol=1e-6)


def test_grid_centres_are_the_5x5_lattice_around_zero():
    centres = grid_centres()
    assert centres.dtype == torch.float32 and centres.shape == (25, 2)
    values = [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert set(map(tuple, centres.tolist())) == set(itertools.product(values, values))
    assert centres[0].tolist() == [-4.0, -4.0] and centres[24].tolist() == [4.0, 4.0]
    assert set(map(tuple, grid_centres(2, spacing=1.0).tolist())) == {
        (-0.5, -0.5), (-0.5, 0.5), (0.5, -0.5), (0.5, 0.5)}


def test_sources_carry_the_published_settings():
    ring, grid = load_ring("unused"), load_grid("unused")
    assert (ring.num_classes, ring.sigma, ring.shape, ring.test_examples) == (8, 0.01, (2,), 2500)
    assert (grid.num_classes, grid.sigma, grid.shape, grid.class_names) == (25, 0.05, (2,), None)


def test_bad_settings_are_user_errors():
    with pytest.raises(GentoolError, match="dataset.source.sigma is 0"):
        load_ring("unused", sigma=0)
    with pytest.raises(GentoolError, match="dataset.source.side"):
        load_grid("unused", side=0)
    with pytest.raises(GentoolError, match="dataset.source.test_examples"):
        load_grid("unused", test_examples=0)
    with pytest.raises(GentoolError, match="trainer.batch_size"):
        PointBatches(load_ring("unused"), 0, "cpu", fixed_test=False)


# --- training draws ------------------------------------------------------------------------------

@pytest.mark.parametrize("load", [load_ring, load_grid])
def test_training_draws_follow_the_mixture(load):
    data = load("unused")
    batches = PointBatches(data, 500, "cpu", fixed_test=False)
    assert len(batches) == 5 and batches.num_examples == 2500       # 2500 // 500, nominal epoch
    torch.manual_seed(0)
    drawn = take(batches.iter_batches(), 40)
    x, y = torch.cat([b[0] for b in drawn]), torch.cat([b[1] for b in drawn])
    assert x.shape == (20_000, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    m = data.num_classes
    frequencies = torch.bincount(y, minlength=m).float() / len(y)
    # Binomial standard error of a frequency is sqrt(p(1-p)/n) <= 0.0035 here: allow ~4 of them.
    assert (frequencies - 1 / m).abs().max() < 0.015
    offsets = x - data.centres[y]
    for k in range(m):
        std = offsets[y == k].std(dim=0)
        assert torch.allclose(std, torch.full((2,), data.sigma), rtol=0.15), (k, std)
    assert offsets.abs().max() < 6 * data.sigma           # every point belongs to its label


def test_training_batches_depend_only_on_the_rng_state():
    # What is guaranteed: the same global RNG state gives the same batches, whatever start_step.
    # The engine restores the state saved with a checkpoint, so a resumed run draws exactly what
    # the uninterrupted run drew after that step.
    batches = PointBatches(load_ring("unused"), 16, "cpu", fixed_test=False)
    torch.manual_seed(1)
    take(batches.iter_batches(), 2)                       # two steps of training...
    state = torch.get_rng_state()                         # ...then a checkpoint
    reference = take(batches.iter_batches(), 3)
    torch.set_rng_state(state)
    resumed = take(batches.iter_batches(start_step=2), 3)
    for (x, y), (rx, ry) in zip(reference, resumed):
        assert torch.equal(x, rx) and torch.equal(y, ry)
    assert not torch.equal(reference[0][0], reference[1][0])      # fresh points every batch
    # Another run seed (through the global RNG) gives other points.
    torch.manual_seed(2)
    assert not torch.equal(next(batches.iter_batches())[0], reference[0][0])


def test_batches_larger_than_the_nominal_epoch_are_fine_for_training():
    batches = PointBatches(load_ring("unused", test_examples=10), 64, "cpu", fixed_test=False)
    assert len(batches) == 1 and next(batches.iter_batches())[0].shape == (64, 2)
    assert [len(x) for x, _ in batches.epoch()] == [10]


# --- the fixed test set --------------------------------------------------------------------------

def test_test_set_is_fixed_for_every_run_and_covers_each_point_once():
    data = load_grid("unused", test_examples=100)
    sets = []
    for seed in (0, 7):
        torch.manual_seed(seed)      # the global RNG does not matter either
        test = PointBatches(data, 32, "cpu", fixed_test=True)
        assert len(test) == 4 and test.num_examples == 100 and test.device == torch.device("cpu")
        passed = list(test.epoch())
        assert [len(x) for x, _ in passed] == [32, 32, 32, 4]
        sets.append((torch.cat([x for x, _ in passed]), torch.cat([y for _, y in passed])))
    (x0, y0), (x1, y1) = sets
    assert torch.equal(x0, x1) and torch.equal(y0, y1)
    assert (x0 - data.centres[y0]).abs().max() < 6 * data.sigma
    # Endless iteration cycles through the same points, from batch start_step on.
    endless = take(PointBatches(data, 32, "cpu", fixed_test=True).iter_batches(2), 3)
    assert [len(x) for x, _ in endless] == [32, 4, 32]
    assert torch.equal(endless[0][0], x0[64:96]) and torch.equal(endless[2][0], x0[:32])


# --- mode_metrics --------------------------------------------------------------------------------

SQUARE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_samples_on_every_centre_cover_all_modes():
    result = mode_metrics(SQUARE.repeat(5, 1), SQUARE, sigma=0.1)
    assert result == {"modes": 4.0, "high_quality": 1.0, "reverse_kl": pytest.approx(0.0),
                      "spread": 0.0}


def test_samples_on_one_centre_are_one_mode_with_kl_log_m():
    result = mode_metrics(SQUARE[2:3].repeat(10, 1), SQUARE, sigma=0.1)
    assert result["modes"] == 1.0 and result["high_quality"] == 1.0
    assert result["reverse_kl"] == pytest.approx(math.log(4))


def test_high_quality_boundary_is_three_sigma():
    sigma = 0.1
    near = torch.tensor([[0.29, 0.0], [0.0, 0.29], [1.0, 0.71]])    # 2.9 sigma from a centre
    far = torch.tensor([[0.31, 0.0], [0.0, 0.31], [1.0, 0.69]])     # 3.1 sigma
    assert mode_metrics(near, SQUARE, sigma)["high_quality"] == 1.0
    assert mode_metrics(far, SQUARE, sigma)["high_quality"] == 0.0
    assert mode_metrics(torch.cat([near[:1], far]), SQUARE, sigma)["high_quality"] == 0.25


def test_a_stray_sample_counts_in_the_kl_but_covers_no_mode():
    a_b = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    # Two samples on A, one far from everything but nearest to B.
    result = mode_metrics(torch.tensor([[0.0, 0.0], [0.0, 0.0], [6.0, 0.0]]), a_b, sigma=0.1)
    assert result["modes"] == 1.0 and result["high_quality"] == pytest.approx(2 / 3)
    expected = 2 / 3 * math.log(2 / 3 * 2) + 1 / 3 * math.log(1 / 3 * 2)
    assert result["reverse_kl"] == pytest.approx(expected)


def test_reverse_kl_by_hand_on_two_centres():
    a_b = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor([[0.0, 0.0], [0.01, 0.0], [0.0, -0.01], [10.0, 0.0]])  # 3 on A, 1 on B
    result = mode_metrics(samples, a_b, sigma=0.1)
    assert result["modes"] == 2.0 and result["high_quality"] == 1.0
    assert result["reverse_kl"] == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert result["reverse_kl"] == pytest.approx(0.1308, abs=1e-4)


def test_spread_by_hand_counts_only_high_quality_samples():
    # distances 0.1 and 0.2 (1 and 2 sigma) from their centres; the third sample is too far
    samples = torch.tensor([[0.1, 0.0], [1.0, 0.8], [0.5, 0.5]])
    result = mode_metrics(samples, SQUARE, sigma=0.1)
    assert result["high_quality"] == pytest.approx(2 / 3)
    # sqrt(mean(0.1^2, 0.2^2) / 2) / 0.1 = sqrt(0.025 / 2) / 0.1
    assert result["spread"] == pytest.approx(math.sqrt(0.025 / 2) / 0.1)


def test_metrics_of_true_draws_are_perfect():
    data = load_grid("unused")
    torch.manual_seed(0)
    x, _ = next(PointBatches(data, 2500, "cpu", fixed_test=False).iter_batches())
    result = mode_metrics(x, data.centres, data.sigma)
    assert result["modes"] == 25.0 and result["high_quality"] > 0.98    # 3 sigma in 2-D: 98.9%
    assert result["reverse_kl"] < 0.02
    # a 2-D Gaussian cut at 3 sigma: sqrt(1 - 4.5 e^-4.5 / (1 - e^-4.5)) = 0.9744 per axis
    cut = math.sqrt(1 - 4.5 * math.exp(-4.5) / (1 - math.exp(-4.5)))
    assert result["spread"] == pytest.approx(cut, abs=0.03)


def test_no_high_quality_sample_reports_no_reverse_kl():
    """Samples 0.42 (4.2 sigma) outside each corner of the square: none is high quality, yet
    their nearest-centre histogram is uniform, which would give a perfect reverse KL of 0."""
    from gentool.evaluate.suites import Row
    from gentool.evaluate.table import format_table

    samples = (SQUARE * 1.6 - 0.3).repeat(5, 1)
    result = mode_metrics(samples, SQUARE, sigma=0.1)
    assert result["modes"] == 0.0 and result["high_quality"] == 0.0
    assert math.isnan(result["reverse_kl"]) and math.isnan(result["spread"])
    one_good = mode_metrics(torch.cat([samples, SQUARE[:1]]), SQUARE, sigma=0.1)
    assert one_good["modes"] == 1.0 and math.isfinite(one_good["reverse_kl"])
    table = format_table([Row("reverse KL", "reverse_kl", result["reverse_kl"])], "eval")
    assert table.splitlines()[-1].split()[-1] == "—"


def test_non_finite_samples_are_never_high_quality():
    result = mode_metrics(torch.tensor([[0.0, 0.0], [math.nan, 0.0]]), SQUARE, sigma=0.1)
    assert result["high_quality"] == 0.5 and result["modes"] == 1.0


# --- build_data on the composed configs ----------------------------------------------------------

@pytest.mark.parametrize("name, classes", [("ring", 8), ("grid", 25)])
def test_build_data_from_the_composed_config(name, classes):
    cfg = compose_config("train", [f"dataset={name}"])
    data = build_data(cfg.dataset, "data", "cpu", 64, 0)
    assert isinstance(data, Data) and data.name == name and data.shape == (2,)
    assert data.num_classes == classes
    assert data.value_range == tuple(cfg.dataset.range)
    x, y = next(data.train.iter_batches())
    assert x.shape == (64, 2) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) < classes
    assert sum(len(x) for x, _ in data.test.epoch()) == 2500
    metrics = data.sample_metrics(x)
    assert set(metrics) == {"modes", "high_quality", "reverse_kl", "spread"} and metrics["modes"] > 1


def test_images_have_no_sample_metrics():
    cfg = compose_config("train", ["dataset=digits"])
    assert build_data(cfg.dataset, "data", "cpu", 32, 0).sample_metrics is None


def test_build_data_refuses_binarised_or_mismatched_points():
    cfg = compose_config("train", ["dataset=ring", "dataset.binarize=dynamic"])
    with pytest.raises(GentoolError, match="binarize is 'dynamic'.*set dataset.binarize=none"):
        build_data(cfg.dataset, "data", "cpu", 64, 0)
    cfg = compose_config("train", ["dataset=grid", "dataset.source.side=3"])
    with pytest.raises(GentoolError, match="grid has 9 classes; set dataset.num_classes=9"):
        build_data(cfg.dataset, "data", "cpu", 64, 0)
    cfg = compose_config("train", ["dataset=ring", "dataset.source.modes=1"])
    with pytest.raises(GentoolError, match="ring has 1 class; set dataset.num_classes=1"):
        build_data(cfg.dataset, "data", "cpu", 64, 0)
    cfg = compose_config("train", ["dataset=ring", "dataset.shape=[1,8,8]"])
    with pytest.raises(GentoolError, match=r"set dataset.shape=\[2\]"):
        build_data(cfg.dataset, "data", "cpu", 64, 0)


def test_point_data_is_what_the_sources_return():
    assert isinstance(load_ring("unused"), PointData)
