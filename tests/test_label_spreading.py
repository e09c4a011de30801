"""Label spreading (gentool.label_spreading) against hand computations on a few points."""

import math

import pytest
import torch

from gentool.errors import GentoolError
from gentool.label_spreading import (class_mass_normalise, label_spreading, nearest, spread,
                                     spreading_matrix, unit_rows, vote)
from gentool.spreading_classifier import SpreadingClassifier

# A path 0 - 1 - 2: point 0's neighbour is 1, 1's is 0, 2's is 1. Made symmetric: edges 0-1 and
# 1-2, degrees 1, 2, 1, so S[0,1] = S[1,2] = 1/sqrt(1*2).
PATH = torch.tensor([[1], [0], [1]])


def dense(matrix):
    return matrix.to_dense()


def test_spreading_matrix_of_a_path_by_hand():
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[0, r, 0], [r, 0, r], [0, r, 0]])
    assert torch.allclose(dense(spreading_matrix(PATH)), expected)


def test_an_edge_both_points_name_counts_once():
    both = torch.tensor([[1], [0]])     # 0 names 1 and 1 names 0: W[0,1] = 1, not 2
    assert torch.allclose(dense(spreading_matrix(both)), torch.tensor([[0.0, 1], [1, 0]]))


def test_one_step_of_spreading_by_hand():
    # Seeds: point 0 is class 0, point 2 is class 1, point 1 is unlabelled. One step with
    # alpha = 0.5: F = 0.5 S Y + 0.5 Y. S Y has row 1 = (1/sqrt2, 1/sqrt2), rows 0 and 2 zero.
    seeds = torch.tensor([[1.0, 0], [0, 0], [0, 1]])
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[0.5, 0], [0.5 * r, 0.5 * r], [0, 0.5]])
    assert torch.allclose(spread(spreading_matrix(PATH), seeds, 0.5, 1), expected)


def test_spreading_converges_to_the_closed_form():
    torch.manual_seed(0)
    points = unit_rows(torch.randn(12, 3))
    matrix = spreading_matrix(nearest(points, points, 3, exclude_self=True))
    seeds = torch.zeros(12, 2)
    seeds[0, 0] = seeds[5, 1] = 1
    alpha = 0.8
    closed = (1 - alpha) * torch.linalg.solve(torch.eye(12) - alpha * dense(matrix), seeds)
    assert torch.allclose(spread(matrix, seeds, alpha, 200), closed, atol=1e-6)


def test_class_mass_normalisation_by_hand():
    # Rows to distributions: (3, 1) -> (.75, .25), (1, 1) -> (.5, .5), (0, 0) stays 0. Then the
    # columns (1.25, .75) are scaled to total 1.
    spreading = torch.tensor([[3.0, 1], [1, 1], [0, 0]])
    expected = torch.tensor([[0.75 / 1.25, 0.25 / 0.75], [0.5 / 1.25, 0.5 / 0.75], [0, 0]])
    assert torch.allclose(class_mass_normalise(spreading), expected)


def test_nearest_is_by_cosine_excludes_self_and_does_not_depend_on_the_chunk():
    points = unit_rows(torch.tensor([[1.0, 0], [10, 1], [0, 1], [-1, 0.1]]))
    # [10, 1] is far from [1, 0] in distance but close in direction.
    assert nearest(points, points, 1, exclude_self=True)[:, 0].tolist() == [1, 0, 1, 2]
    assert nearest(points, points, 1)[:, 0].tolist() == [0, 1, 2, 3]
    torch.manual_seed(0)
    many = unit_rows(torch.randn(50, 4))
    assert torch.equal(nearest(many, many, 5, exclude_self=True, chunk=7),
                       nearest(many, many, 5, exclude_self=True))


def two_clusters(n=20):
    """Points scattered around the directions (1, 0) and (0, 1); the first n are class 0."""
    torch.manual_seed(0)
    centres = torch.tensor([[1.0, 0], [0, 1]]).repeat_interleave(n, 0)
    return unit_rows(centres + 0.1 * torch.randn(2 * n, 2)), torch.arange(2).repeat_interleave(n)


def test_one_label_per_cluster_reaches_the_whole_cluster_and_new_points():
    points, classes = two_clusters()
    labelled = torch.tensor([3, 25])
    distributions = label_spreading(points, labelled, classes[labelled], 2, neighbours=4,
                                    alpha=0.99, iterations=100)
    assert torch.equal(distributions.argmax(1), classes)
    queries = unit_rows(torch.tensor([[1.0, 0.2], [0.1, 1]]))
    assert vote(queries, points, distributions, 4).argmax(1).tolist() == [0, 1]


def test_more_neighbours_than_points_is_one_sentence():
    points, classes = two_clusters(3)
    with pytest.raises(GentoolError, match="neighbours=6 needs more than that many training "
                                           "examples but there are 6; lower it"):
        label_spreading(points, torch.tensor([0]), torch.tensor([0]), 2, 6, 0.9, 10)


def test_spreading_classifier_standardises_codes_and_predicts_the_clusters():
    class Shifted(torch.nn.Module):
        """An 'encoder' whose codes are the points shifted and stretched: standardising the
        codes undoes it."""
        latent_dim = 2

        def encode(self, x):
            return x * torch.tensor([5.0, 0.2]) + 100

    points, classes = two_clusters()
    classifier = SpreadingClassifier(Shifted(), 2, neighbours=4, alpha=0.99, iterations=100,
                                     standardize=True)
    labelled = torch.tensor([0, 20])
    classifier.fit(points, labelled, classes[labelled])
    assert torch.allclose(classifier.code_mean, Shifted().encode(points).mean(0))
    assert classifier.distributions.shape == (40, 2)
    assert torch.equal(classifier(points).argmax(1), classes)
    raw = SpreadingClassifier(Shifted(), 2, 4, 0.99, 100, standardize=False)
    raw.fit(points, labelled, classes[labelled])
    assert torch.equal(raw.code_mean, torch.zeros(2)) and torch.equal(raw.code_std, torch.ones(2))
    assert torch.allclose(raw.train_points, unit_rows(Shifted().encode(points)))
