"""Improved precision and recall of generative models (Kynkäänniemi et al. 2019).

Each set of feature vectors approximates its manifold by the union of balls around its points,
each ball reaching the point's k-th nearest neighbour within the same set (k=3 in the paper).

    precision = share of generated points inside the real manifold   (are samples realistic?)
    recall    = share of real points inside the generated manifold   (is the data covered?)
"""

from __future__ import annotations

import torch


def knn_radii(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance of every point to its k-th nearest neighbour in the same set (itself excluded)."""
    if features.shape[0] <= k:
        raise ValueError(f"need more than k={k} points for k-NN radii, got {features.shape[0]}")
    radii = []
    for start in range(0, features.shape[0], chunk):
        distances = torch.cdist(features[start:start + chunk], features)
        # The smallest distance is the point to itself (0), so the k-th neighbour is at index k.
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def inside_manifold(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor,
                    chunk: int = 1024) -> torch.Tensor:
    """For each query, whether it lies within some point's ball (distance <= that point's radius)."""
    inside = []
    for start in range(0, queries.shape[0], chunk):
        distances = torch.cdist(queries[start:start + chunk], points)
        inside.append((distances <= radii[None, :]).any(dim=1))
    return torch.cat(inside)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    real, fake = real.detach().double(), fake.detach().double()
    precision = inside_manifold(fake, real, knn_radii(real, k)).double().mean()
    recall = inside_manifold(real, fake, knn_radii(fake, k)).double().mean()
    return {"precision": float(precision), "recall": float(recall)}
