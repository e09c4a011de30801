"""Sample-quality, coverage, reconstruction and representation metrics against hand computations."""

import numpy as np
import pytest
import scipy.linalg
import torch

from gentool.engine.visuals import line_plot
from gentool.evaluate.suites import reconstruction_errors
from gentool.metrics.classifier import (FeatureClassifier, accuracy, content_key, features_of,
                                       random_shift, train_classifier)
from gentool.metrics.coverage import class_coverage, per_class_accuracy
from gentool.metrics.frechet import frechet_distance, frechet_distance_of, mean_and_covariance
from gentool.metrics.pca import PCA
from gentool.metrics.precision_recall import inside_manifold, knn_radii, precision_recall
from gentool.metrics.representation import representation_metrics, standardise


def test_frechet_distance_of_one_dimensional_gaussians():
    # (mu1 - mu2)^2 + (s1 - s2)^2 = 1 + (2 - 1)^2
    assert frechet_distance(torch.tensor([0.0]), torch.tensor([[4.0]]), torch.tensor([1.0]),
                            torch.tensor([[1.0]])) == pytest.approx(2.0)


def test_frechet_distance_of_diagonal_gaussians():
    # |(1, 2)|^2 + (1 - 2)^2 + (3 - 1)^2 = 5 + 1 + 4
    value = frechet_distance(torch.zeros(2), torch.diag(torch.tensor([1.0, 9.0])),
                             torch.tensor([1.0, 2.0]), torch.diag(torch.tensor([4.0, 1.0])))
    assert value == pytest.approx(10.0)


def test_frechet_distance_matches_scipy_sqrtm_for_general_covariances():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 3, generator=generator), torch.randn(3, 3, generator=generator)
    c1, c2 = (a @ a.T).double(), (b @ b.T).double()
    mu1, mu2 = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    root = scipy.linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum() + torch.trace(c1 + c2) - 2 * np.trace(root))
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_identical_features_is_zero():
    features = torch.randn(200, 5)
    assert frechet_distance_of(features, features) == pytest.approx(0.0, abs=1e-6)
    mean, covariance = mean_and_covariance(features)
    assert torch.allclose(covariance, torch.from_numpy(np.cov(features.numpy().T)), atol=1e-6)


def test_frechet_distance_of_shifted_features_is_the_squared_shift():
    # f + c has the mean moved by c and the same covariance C: |c|^2 + Tr(C + C - 2 C) = |c|^2,
    # here 1 + 4 + 0.25.
    features = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    shift = torch.tensor([1.0, -2.0, 0.5])
    assert frechet_distance_of(features, features + shift) == pytest.approx(5.25, rel=1e-6)
    assert frechet_distance_of(features + shift, features) == pytest.approx(5.25, rel=1e-6)


def test_knn_radii_exclude_the_point_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(points, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(points, 2).tolist() == [3.0, 2.0, 3.0, 6.0]


def test_precision_and_recall_by_hand():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])       # k=1 radii: 1, 1, 1, 1
    fake = torch.tensor([[0.1], [0.4], [9.0], [10.0]])      # k=1 radii: 0.3, 0.3, 1, 1
    # precision: 0.1 and 0.4 lie in real balls, 9 and 10 do not.
    # recall: only real 0 lies in a fake ball (0.1 +- 0.3); 1 is 0.6 from 0.4, 2 and 3 are far.
    assert precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 0.25}


def test_chunked_radii_membership_and_precision_recall_match_the_hand_case(monkeypatch):
    """The hand case above with chunks of 1 and 3 of its 4 points (the last chunk ragged)."""
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.1], [0.4], [9.0], [10.0]])
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    for chunk in (1, 3):
        assert knn_radii(points, 1, chunk=chunk).tolist() == [1.0, 1.0, 2.0, 4.0]
        assert knn_radii(points, 2, chunk=chunk).tolist() == [3.0, 2.0, 3.0, 6.0]
        radii = torch.tensor([1.0, 1.0, 1.0, 1.0])
        assert inside_manifold(fake, real, radii, chunk=chunk).tolist() == \
            [True, True, False, False]
        # precision_recall with both helpers' default chunk set to `chunk`
        monkeypatch.setattr(knn_radii, "__defaults__", (chunk,))
        monkeypatch.setattr(inside_manifold, "__defaults__", (chunk,))
        assert precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 0.25}


def test_class_coverage_by_hand():
    predicted = torch.tensor([0, 0, 1, 1])
    labels = torch.tensor([0, 1, 2, 2])          # q = (1/4, 1/4, 1/2); p = (1/2, 1/2, 0)
    result = class_coverage(predicted, labels, num_classes=3)
    assert result["classes_covered"] == 2
    assert result["class_kl"] == pytest.approx(2 * 0.5 * np.log(0.5 / 0.25))
    assert class_coverage(labels, labels, 3)["class_kl"] == pytest.approx(0.0)


def test_per_class_accuracy_by_hand():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 3])       # the classes asked for; none of class 2
    predicted = torch.tensor([0, 0, 1, 2, 1, 0, 3])     # class 0: 2 of 4 right, class 1: 1 of 2
    result = per_class_accuracy(predicted, labels, num_classes=4)
    assert result.dtype == torch.float64 and result.shape == (4,)
    assert result[[0, 1, 3]].tolist() == [0.5, 0.5, 1.0]
    assert torch.isnan(result[2])                       # no example of class 2: undefined
    with pytest.raises(ValueError, match="one prediction per label"):
        per_class_accuracy(predicted[:3], labels, 4)


def test_reconstruction_errors_by_hand():
    images = torch.tensor([[0.0, 1.0]])
    outputs = torch.tensor([[0.5, 0.5]])
    errors = reconstruction_errors(images, outputs)
    assert errors["mse"] == pytest.approx(0.25)
    assert errors["bce"] == pytest.approx(np.log(2.0), rel=1e-5)


def test_the_pca_baseline_has_as_many_components_as_the_code_up_to_min_n_d():
    from gentool.metrics.pca import baseline_components, fewer_components_note

    wide, narrow = torch.zeros(5, 1, 4, 4), torch.zeros(50, 12)
    assert baseline_components(3, narrow) == 3 and fewer_components_note(3, narrow) == ""
    assert baseline_components(20, narrow) == 12
    assert fewer_components_note(20, narrow) == \
        "all 12 input dimensions, an exact copy; the code has 20"
    assert baseline_components(8, wide) == 5
    assert fewer_components_note(8, wide) == "one per train example (5); the code has 8"


def test_pca_matches_the_top_eigenvectors_and_is_exact_at_full_rank():
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(100, 3, generator=generator) * torch.tensor([3.0, 1.0, 0.1])
    pca = PCA(data, 1)
    assert abs(float(pca.basis[0, 0])) == pytest.approx(1.0, abs=0.02)  # the widest axis
    full = PCA(data, 3)
    assert torch.allclose(full.reconstruct(data), data, atol=1e-5)
    with pytest.raises(ValueError):
        PCA(data, 4)


def test_standardise_uses_train_statistics_and_leaves_constant_features_alone():
    train = np.array([[0.0, 5.0], [2.0, 5.0]])
    test = np.array([[4.0, 5.0]])
    scaled_train, scaled_test = standardise(train, test)
    assert scaled_train.tolist() == [[-1.0, 0.0], [1.0, 0.0]]
    assert scaled_test.tolist() == [[3.0, 0.0]]


def test_representation_metrics_on_separable_and_on_random_codes():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    separable = np.eye(3)[labels] * 10 + rng.normal(size=(120, 3))
    result = representation_metrics(separable, labels, separable, labels, num_classes=3)
    assert result == {"linear_probe": 1.0, "knn": 1.0, "kmeans_nmi": pytest.approx(1.0)}
    noise = rng.normal(size=(120, 3))
    chance = representation_metrics(noise, labels, rng.normal(size=(120, 3)), labels, 3)
    assert chance["linear_probe"] < 0.6 and chance["kmeans_nmi"] < 0.2


def test_representation_metrics_of_one_dimensional_codes_by_hand():
    """Train codes 0, 1, 3 | 8, 10, 11 with labels 0, 0, 1 | 0, 1, 1: mirrored about 5.5 with
    labels swapped, so the (strictly convex) probe's optimum has its boundary at the train mean
    5.5, standardised to 0, and a positive slope (class 1 lies mostly above): it predicts 1 above
    5.5. 1-NN (standardising keeps the order of distances) takes the nearest train label.
        test  0.4   2.8   8.2   10.6      labels 0, 1, 0, 1
        probe 0     0     1     1         -> 2 of 4 right
        1-NN  0     1(3)  0(8)  1         -> 4 of 4 right
    2-means of the test codes splits {0.4, 2.8} | {8.2, 10.6} (SSE 5.76, against 31.9 for
    {0.4} | the rest), independent of the labels: NMI 0."""
    train = np.array([[0.0], [1.0], [3.0], [8.0], [10.0], [11.0]])
    train_labels = np.array([0, 0, 1, 0, 1, 1])
    test = np.array([[0.4], [2.8], [8.2], [10.6]])
    test_labels = np.array([0, 1, 0, 1])
    result = representation_metrics(train, train_labels, test, test_labels, num_classes=2,
                                    neighbours=1)
    assert result == {"linear_probe": 0.5, "knn": 1.0, "kmeans_nmi": pytest.approx(0.0, abs=1e-9)}


def test_feature_classifier_fits_any_image_size_and_keys_its_cache_by_content():
    for shape in ((1, 8, 8), (3, 32, 32), (1, 28, 20)):
        model = FeatureClassifier(shape[0], 10)
        features, predicted = features_of(model, torch.rand(5, *shape))
        assert features.shape == (5, 128) and predicted.shape == (5,)
    images, labels = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    key = content_key(images, labels, steps=100)
    assert key == content_key(images.clone(), labels.clone(), steps=100)
    assert key != content_key(images, torch.tensor([0, 1, 2, 2]), steps=100)
    assert key != content_key(torch.flip(images, [0]), labels, steps=100)
    assert key != content_key(images, labels, steps=200)   # a longer recipe is another model


def test_random_shift_moves_the_whole_batch_by_one_offset_within_the_bound():
    images = torch.zeros(3, 1, 9, 9)
    images[:, :, 4, 4] = 1.0
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        shifted = random_shift(images, generator)
        assert shifted.shape == images.shape and shifted.sum() == 3   # nothing falls off
        rows, cols = torch.nonzero(shifted[:, 0] == 1, as_tuple=True)[1:]
        assert len(set(rows.tolist())) == 1 and len(set(cols.tolist())) == 1
        seen.add((rows[0].item() - 4, cols[0].item() - 4))
    assert seen == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_feature_classifier_learns_a_separable_task_and_reports_progress():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat(64)
    images = torch.rand(128, 1, 8, 8, generator=generator) * 0.2
    images[labels == 1, :, :4] += 0.8   # class 1: a bright top half
    reports = []
    model = train_classifier(images, labels, 2, steps=60, batch_size=32,
                             progress=lambda step, loss: reports.append((step, loss)),
                             progress_every=20)
    assert [step for step, _ in reports] == [20, 40, 60]
    assert reports[-1][1] < reports[0][1]
    assert accuracy(model, images, labels) == 1.0


def test_line_plot_draws_an_rgb_image():
    image = line_plot([1, 10, 100], [5.0, 4.0, 3.5], 3.4, "title", "k", "naive", "IWAE")
    assert image.shape == (3, 400, 640) and 0 <= image.min() and image.max() <= 1
    assert (image < 0.9).any()   # something was drawn
