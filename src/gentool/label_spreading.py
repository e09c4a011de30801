"""Label spreading (Zhou et al. 2004) on a k-nearest-neighbour graph of feature vectors.

A transductive classifier: the few labels flow along the graph of *all* the training points,
labelled or not, so the unlabelled examples shape the decision boundary (the role the TSVM plays
in Kingma et al. 2014's "M1 + TSVM"). Neighbours are by cosine similarity: the callers pass
standardised codes, and their direction separated Fashion-MNIST's classes slightly better than
their Euclidean distance (+0.7 points at 10 labels per class; docs/benchmarks.md, semi-supervised
section).

    W  = the k-NN graph made symmetric (i ~ j when either is among the other's k neighbours)
    S  = D^-1/2 W D^-1/2                      (D: the degrees of W)
    F <- alpha S F + (1 - alpha) Y            (`iterations` times from F = Y; Y: one-hot seeds)

F tends to (1 - alpha) (I - alpha S)^-1 Y. Each row of F is then made a distribution over the
classes and each class's column is scaled to unit total mass ("class mass normalisation", Zhu
et al. 2003): without it the classes whose few seeds sit in dense regions swallow the others
(+1.2 to 1.6 points at 10 labels per class in the measurements). A new point takes the summed
distributions of its k nearest training points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gentool.errors import GentoolError


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length (a zero row stays zero), so a dot product is the cosine."""
    return F.normalize(x.float(), dim=1)


@torch.no_grad()
def nearest(queries: torch.Tensor, points: torch.Tensor, k: int, exclude_self: bool = False,
            chunk: int = 1024) -> torch.Tensor:
    """Indices [len(queries), k] of each query's k most cosine-similar rows of `points` (both
    already unit rows), most similar first. With `exclude_self` the queries are the points and a
    point is not its own neighbour. Chunked, so the similarity matrix is never whole in memory."""
    found = []
    for start in range(0, len(queries), chunk):
        similarity = queries[start:start + chunk] @ points.T
        if exclude_self:
            rows = torch.arange(len(similarity), device=similarity.device)
            similarity[rows, rows + start] = -float("inf")
        found.append(similarity.topk(k, dim=1).indices)
    return torch.cat(found)


def spreading_matrix(neighbours: torch.Tensor) -> torch.Tensor:
    """S = D^-1/2 W D^-1/2 (sparse) of the symmetric 0/1 graph W of `neighbours` [n, k]."""
    n, k = neighbours.shape
    rows = torch.arange(n, device=neighbours.device).repeat_interleave(k)
    cols = neighbours.reshape(-1)
    edges = torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])])
    # Both directions of every edge, duplicates summed by coalesce, then clamped: W is 0/1.
    weights = torch.sparse_coo_tensor(edges, torch.ones(edges.shape[1], device=edges.device),
                                      (n, n), check_invariants=False).coalesce()
    index, values = weights.indices(), weights.values().clamp(max=1.0)
    degree = torch.zeros(n, device=values.device).index_add_(0, index[0], values)
    scale = degree.rsqrt()
    values = values * scale[index[0]] * scale[index[1]]
    return torch.sparse_coo_tensor(index, values, (n, n), is_coalesced=True,
                                   check_invariants=False)


def spread(matrix: torch.Tensor, seeds: torch.Tensor, alpha: float, iterations: int) -> torch.Tensor:
    """`iterations` steps of F <- alpha S F + (1 - alpha) Y from F = Y (`seeds`: one-hot rows of
    the labelled points, zero rows elsewhere)."""
    spreading = seeds.clone()
    for _ in range(iterations):
        spreading = alpha * (matrix @ spreading) + (1 - alpha) * seeds
    return spreading


def class_mass_normalise(spreading: torch.Tensor) -> torch.Tensor:
    """Each row a distribution over the classes, then each class's column scaled to sum 1 (a row
    the labels never reached stays zero)."""
    rows = spreading / spreading.sum(1, keepdim=True).clamp_min(1e-12)
    return rows / rows.sum(0, keepdim=True).clamp_min(1e-12)


def check_spreading(neighbours: int, examples: int) -> None:
    if neighbours >= examples:
        raise GentoolError(f"finetune.spreading.neighbours={neighbours} needs more than that many "
                           f"training examples but there are {examples}; lower it.")


@torch.no_grad()
def label_spreading(points: torch.Tensor, labelled: torch.Tensor, labels: torch.Tensor,
                    num_classes: int, neighbours: int, alpha: float,
                    iterations: int) -> torch.Tensor:
    """The class distributions [n, num_classes] (class-mass normalised) that the labels of the
    points at indices `labelled` spread to every one of `points` (unit rows)."""
    check_spreading(neighbours, len(points))
    matrix = spreading_matrix(nearest(points, points, neighbours, exclude_self=True))
    seeds = torch.zeros(len(points), num_classes, device=points.device)
    seeds[labelled, labels] = 1.0
    return class_mass_normalise(spread(matrix, seeds, alpha, iterations))


@torch.no_grad()
def vote(queries: torch.Tensor, points: torch.Tensor, distributions: torch.Tensor,
         neighbours: int) -> torch.Tensor:
    """Class scores [len(queries), C] of new points (unit rows): the summed `distributions` of
    their `neighbours` nearest `points`."""
    return distributions[nearest(queries, points, neighbours)].sum(1)
