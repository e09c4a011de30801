"""The small CNN whose penultimate layer is gentool's feature space for sample-quality metrics.

Inception features (FID) need downloaded weights and 299x299 colour inputs; a classifier trained
on the data set's own labelled train split needs neither, works on 8x8 digits as on CIFAR-10, and
its test accuracy says how much its features can be trusted. It is trained the first time a data
set needs it and cached under `data_dir`, keyed by a hash of the data set's content and the
recipe (version, steps), so every run of every model on that data is measured in the same
feature space.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

# Bump when the architecture or the recipe changes: old cache files are then ignored.
VERSION = 2
FEATURES = 128
# Each shifted copy of a batch moves by up to this many pixels (zero padding): the features then
# describe shapes rather than exact pixel positions, and accuracy rises by about two points.
MAX_SHIFT = 2


def cache_dir(data_dir) -> Path:
    """The folder under `data_dir` where trained classifiers are cached, one file per key."""
    return Path(data_dir).expanduser() / "gentool-classifiers"


def _conv_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU()]


class FeatureClassifier(nn.Module):
    """Images [B, C, H, W] scaled to [0, 1] -> FEATURES-d features -> class logits.

    Four 3x3 conv layers with batch norm (two of them strided) and an adaptive pool to 2x2, so
    any image of 4x4 pixels or more fits.
    """

    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_block(channels, width, 1), *_conv_block(width, 2 * width, 2),
            *_conv_block(2 * width, 2 * width, 1), *_conv_block(2 * width, 4 * width, 2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(16 * width, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def content_key(images: torch.Tensor, labels: torch.Tensor, steps: int) -> str:
    """A file name for the classifier of this exact training data, recipe version and length:
    the content alone, so pairs derived from a data set (whose targets are its images and
    labels) share that data set's classifier."""
    digest = hashlib.sha256()
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    digest.update(f"v{VERSION}-steps{steps}".encode())
    return f"{digest.hexdigest()[:16]}.pt"


def random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The batch moved by one random offset of up to MAX_SHIFT pixels each way (zero fill)."""
    dx, dy = (torch.randint(0, 2 * MAX_SHIFT + 1, (2,), generator=generator) - MAX_SHIFT).tolist()
    height, width = images.shape[-2:]
    padded = F.pad(images, (MAX_SHIFT,) * 4)
    return padded[..., MAX_SHIFT + dy:MAX_SHIFT + dy + height,
                  MAX_SHIFT + dx:MAX_SHIFT + dx + width]


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int,
                     batch_size: int = 128, seed: int = 0,
                     progress: Callable[[int, float], None] | None = None,
                     progress_every: int = 500) -> FeatureClassifier:
    """Adam with a one-cycle learning rate on cross-entropy over randomly shifted train batches;
    images are float in [0, 1]. `progress(step, loss)` is called every `progress_every` steps."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureClassifier(images.shape[1], num_classes).to(images.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    model.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(images), (batch_size,), generator=generator).to(images.device)
        loss = F.cross_entropy(model(random_shift(images[index], generator)), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress is not None and (step % progress_every == 0 or step == steps):
            progress(step, loss.item())
    return model.eval()


@torch.no_grad()
def accuracy(model: FeatureClassifier, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> float:
    correct = sum(int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
                  for i in range(0, len(images), batch_size))
    return correct / len(images)


@torch.no_grad()
def features_of(model: FeatureClassifier, images: torch.Tensor,
                batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [N, FEATURES] and predicted classes [N] of images in [0, 1]."""
    feats = torch.cat([model.features(images[i:i + batch_size])
                       for i in range(0, len(images), batch_size)])
    return feats, model.head(feats).argmax(dim=1)
