"""The small CNN whose penultimate layer is gentool's feature space for sample-quality metrics.

Inception features (FID) need downloaded weights and 299x299 colour inputs; a classifier trained
on the data set's own labelled train split needs neither, works on 8x8 digits as on CIFAR-10, and
its test accuracy says how much its features can be trusted. It is trained the first time a data
set needs it and cached under `data_dir`, keyed by the data set and a hash of its content, so
every run of every model on that data is measured in the same feature space.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

# Bump when the architecture or the recipe changes: old cache files are then ignored.
VERSION = 1
FEATURES = 128


class FeatureClassifier(nn.Module):
    """Images [B, C, H, W] scaled to [0, 1] -> FEATURES-d features -> class logits.

    Three 3x3 conv layers (two of them strided) and an adaptive pool to 2x2, so any image of
    4x4 pixels or more fits.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(512, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def content_key(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A file name for the classifier of this exact training data (and recipe version): the
    content alone, so pairs derived from a data set (whose targets are its images and labels)
    share that data set's classifier."""
    digest = hashlib.sha256()
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    digest.update(f"v{VERSION}".encode())
    return f"{digest.hexdigest()[:16]}.pt"


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int,
                     batch_size: int = 128, seed: int = 0) -> FeatureClassifier:
    """Adam on cross-entropy over random train batches; images are float in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureClassifier(images.shape[1], num_classes).to(images.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    for _ in range(steps):
        index = torch.randint(len(images), (batch_size,), generator=generator).to(images.device)
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
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
