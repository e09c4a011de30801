"""The Fréchet distance between Gaussians fitted to two sets of features (Heusel et al. 2017).

    FD = |mu_1 - mu_2|^2 + Tr(C_1 + C_2 - 2 (C_1 C_2)^(1/2))

With Inception features this is FID; gentool also computes it in the feature space of its own
small classifier (metrics/classifier.py) and on raw 2-D points.
"""

from __future__ import annotations

import torch


def mean_and_covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [D] and unbiased covariance [D, D] of features [N, D], in float64."""
    f = features.detach().double()
    if f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {f.shape[0]}")
    return f.mean(dim=0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor,
                     cov2: torch.Tensor) -> float:
    # Tr (C1 C2)^(1/2) = Tr (S C2 S)^(1/2) with S = C1^(1/2): S C2 S is symmetric PSD, so an
    # eigendecomposition suffices (no general sqrtm with complex round-off).
    root1 = _psd_sqrt(cov1.double())
    middle = root1 @ cov2.double() @ root1
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mu1 - mu2).double().pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) \
        - 2 * trace_root
    return max(0.0, float(distance))   # >= 0; clamps round-off below it


def frechet_distance_of(features1: torch.Tensor, features2: torch.Tensor) -> float:
    return frechet_distance(*mean_and_covariance(features1), *mean_and_covariance(features2))
