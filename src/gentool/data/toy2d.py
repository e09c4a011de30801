"""Toy 2-D Gaussian mixtures for mode-collapse studies, with the published settings.

`ring`: 8 Gaussians on a circle of radius 1, sigma 0.01; `grid`: 25 Gaussians at {-4,-2,0,2,4}^2,
sigma 0.05; equal weights (as VEEGAN, Srivastava et al. 2017, and PacGAN, Lin et al. 2018, use
them). A point's label is the index of its mixture component, so conditional models work too.

The distribution is known exactly, so there is nothing to load: training draws fresh points on
the device for every batch, and evaluation uses one fixed, seeded set of points.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from gentool.data.batching import Batch, batches_per_epoch
from gentool.errors import GentoolError

# The evaluation points are drawn once from their own generator with this seed: the test set is
# a fixed property of the data set, the same for every run seed (so evaluations compare).
TEST_SET_SEED = 20_240_602
# A validation set (dataset.validation=N) is another fixed draw, from a seed of its own.
VALIDATION_SET_SEED = 20_240_604



def ring_centres(modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    """[modes, 2] float32: centre k at angle 2*pi*k/modes on a circle of `radius`."""
    _check_positive("modes", modes)
    _check_positive("radius", radius)
    # Angles in float64 so cos(pi/2) etc. round to the nearest float32 rather than drift.
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).to(torch.float32)


def grid_centres(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """[side*side, 2] float32: a square grid centred on 0, {-4,-2,0,2,4}^2 for side 5.

    Row-major with x varying slowest: index i*side + j is (coords[i], coords[j]).
    """
    _check_positive("side", side)
    _check_positive("spacing", spacing)
    coords = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1).to(torch.float32)


@dataclass
class PointData:
    """What load_ring and load_grid return; build_data turns it into PointBatches."""

    centres: torch.Tensor           # float32 [M, 2], one per mixture component (equal weights)
    sigma: float                    # standard deviation in each coordinate
    test_examples: int              # size of the fixed evaluation set
    shape: tuple[int] = (2,)
    class_names: None = None

    @property
    def num_classes(self) -> int:
        """Labels are component indices, so there is one class per centre."""
        return int(self.centres.shape[0])


def load_ring(data_dir: str, modes: int = 8, radius: float = 1.0, sigma: float = 0.01,
              test_examples: int = 2500) -> PointData:
    """The ring of Gaussians. `data_dir` is unused (nothing to load); build_data passes it to
    every source."""
    return _point_data(ring_centres(modes, radius), sigma, test_examples)


def load_grid(data_dir: str, side: int = 5, spacing: float = 2.0, sigma: float = 0.05,
              test_examples: int = 2500) -> PointData:
    """The grid of Gaussians. `data_dir` is unused (nothing to load); build_data passes it to
    every source."""
    return _point_data(grid_centres(side, spacing), sigma, test_examples)


def _point_data(centres: torch.Tensor, sigma: float, test_examples: int) -> PointData:
    _check_positive("sigma", sigma)
    _check_positive("test_examples", test_examples)
    return PointData(centres, float(sigma), int(test_examples))


def _check_positive(key: str, value) -> None:
    if not value > 0:
        raise GentoolError(f"dataset.source.{key} is {value} but must be positive; set "
                           f"dataset.source.{key} to a number above 0.")


def draw(centres: torch.Tensor, sigma: float, n: int,
         generator: torch.Generator | None = None) -> Batch:
    """n points of the mixture and their component labels, on the centres' device.

    The component is drawn uniformly, then the point is centre + sigma * N(0, I). Without a
    generator the draws come from the global torch RNG of that device.
    """
    labels = torch.randint(centres.shape[0], (n,), generator=generator, device=centres.device)
    noise = torch.randn(n, centres.shape[1], generator=generator, device=centres.device)
    return Batch(centres[labels] + sigma * noise, labels)


class PointBatches:
    """The batcher protocol of DeviceBatches (iter_batches, epoch, len, device, num_examples) for
    a mixture of Gaussians.

    Training (fixed_test=False): every batch is a fresh draw from the global torch RNG of the
    device, so there is no epoch structure and `iter_batches(start_step)` ignores start_step. What
    makes resuming exact is the RNG state: the engine saves and restores it with each checkpoint,
    and the same RNG state always gives the same batches. The run seed reaches the draws through
    that RNG (the engine seeds it).

    Evaluation (fixed_test=True): one fixed set of `test_examples` points, drawn once with a
    generator of constant seed, the same for every run; `iter_batches` cycles through it.
    """

    def __init__(self, data: PointData, batch_size: int, device, fixed_test: bool,
                 examples: int | None = None, draw_seed: int = TEST_SET_SEED):
        """`examples` (default: the data's test_examples) and `draw_seed` size and seed the
        fixed set; a validation set passes its own."""
        self.device = torch.device(device)
        self.batch_size, self.fixed_test = batch_size, fixed_test
        self.sigma = data.sigma
        self.centres = data.centres.to(self.device)
        # The nominal epoch is test_examples points, for logging and the epoch() pass only.
        self.num_examples = data.test_examples if examples is None else int(examples)
        # Checks batch_size >= 1 (the evaluation count: the last batch may be smaller).
        self._per_epoch = batches_per_epoch(self.num_examples, batch_size, drop_last=False)
        if fixed_test:
            # Drawn on the CPU, so the test set is the same whatever the training device.
            points, labels = draw(data.centres.cpu(), data.sigma, self.num_examples,
                                  torch.Generator().manual_seed(draw_seed))
            self.points, self.labels = points.to(self.device), labels.to(self.device)
        else:
            # Fresh draws never run out, so a batch larger than the nominal epoch is fine.
            self._per_epoch = max(1, self.num_examples // batch_size)

    def __len__(self) -> int:
        """Batches per nominal epoch (training: full batches of test_examples points)."""
        return self._per_epoch

    def iter_batches(self, start_step: int = 0) -> Iterator[Batch]:
        """Endless (x, y) batches. Training: fresh draws, whatever start_step (see the class
        docstring); evaluation: the fixed set in order, cycled, from batch start_step on."""
        if not self.fixed_test:
            while True:
                yield draw(self.centres, self.sigma, self.batch_size)
        step = start_step % self._per_epoch
        while True:
            yield self._fixed(step)
            step = (step + 1) % self._per_epoch

    def epoch(self) -> Iterator[Batch]:
        """One nominal epoch of num_examples points, the last batch possibly smaller: the fixed
        set for evaluation, fresh draws from the global RNG for training."""
        if self.fixed_test:
            for b in range(self._per_epoch):
                yield self._fixed(b)
            return
        for start in range(0, self.num_examples, self.batch_size):
            yield draw(self.centres, self.sigma, min(self.batch_size, self.num_examples - start))

    def _fixed(self, b: int) -> Batch:
        index = slice(b * self.batch_size, (b + 1) * self.batch_size)
        return Batch(self.points[index], self.labels[index])
