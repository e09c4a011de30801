"""Retrieval precision of codes: how often a document's nearest neighbours share its label.

For each query (every test code in turn), the other test codes are ranked by cosine similarity
to it (the query itself left out) and the precision at k is the fraction of the k nearest with
the query's label; the result is its mean over all queries. This is the measure of Hinton &
Salakhutdinov (2006, document retrieval), reported there at several k as a precision curve.
"""

from __future__ import annotations

import torch

DEFAULT_KS = (1, 10, 100)


def measurable(k: int, n: int) -> bool:
    """Whether precision@k among n codes depends on the codes: at k >= n - 1 every other code is
    among the k nearest, so the precision is the share of the query's label among the others
    whatever the codes are."""
    return k < n - 1


@torch.no_grad()
def retrieval_precision(codes: torch.Tensor, labels: torch.Tensor, ks=DEFAULT_KS,
                        chunk: int = 1024) -> dict[int, float]:
    """Mean precision at each k of cosine k-NN retrieval among `codes` [N, D] with `labels` [N].

    Only the measurable ks are in the result (k < N - 1, see `measurable`). A zero code has
    cosine 0 with every code; ties are broken by index, as torch.topk breaks them.
    """
    codes = codes.detach().double().flatten(1)
    labels = labels.detach().to(codes.device)
    n = len(codes)
    if n < 2:
        raise ValueError(f"retrieval needs at least 2 codes, got {n}")
    ks = [k for k in ks if measurable(k, n)]
    if not ks:
        return {}
    unit = codes / codes.norm(dim=1, keepdim=True).clamp(min=1e-12)
    k_max = max(ks)
    hits = torch.zeros(k_max, dtype=torch.float64, device=codes.device)
    for start in range(0, n, chunk):
        similarity = unit[start:start + chunk] @ unit.T
        rows = torch.arange(similarity.shape[0], device=codes.device)
        similarity[rows, rows + start] = -float("inf")    # never retrieve the query itself
        nearest = similarity.topk(k_max, dim=1).indices
        same = labels[nearest] == labels[start:start + chunk, None]
        hits += same.double().sum(dim=0)                  # hits at rank r, over the queries
    cumulative = hits.cumsum(0) / n                       # mean hits among the first r + 1
    return {k: float(cumulative[k - 1] / k) for k in ks}
