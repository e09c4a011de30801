"""How useful codes are for the labels: linear probe, k-NN and k-means on a train/test split.

Codes are standardised with the train codes' mean and std first, so the probes see every
representation (latent codes, raw pixels, PCA codes) on the same footing.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0     # a constant feature carries no information; leave it at 0
    return (train - mean) / std, (test - mean) / std


def representation_metrics(train_codes: np.ndarray, train_labels: np.ndarray,
                           test_codes: np.ndarray, test_labels: np.ndarray, num_classes: int,
                           seed: int = 0, neighbours: int = 5) -> dict[str, float]:
    """Test accuracy of a logistic-regression probe and of k-NN fitted on the train codes, and
    the NMI between k-means clusters (k = num_classes) of the test codes and their labels."""
    train, test = standardise(train_codes.astype(np.float64), test_codes.astype(np.float64))
    with warnings.catch_warnings():
        # A probe at its iteration cap is still a fair (slightly pessimistic) probe.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = LogisticRegression(max_iter=500).fit(train, train_labels)
    knn = KNeighborsClassifier(n_neighbors=neighbours).fit(train, train_labels)
    clusters = KMeans(n_clusters=num_classes, n_init=4, random_state=seed).fit_predict(test)
    return {"linear_probe": float((probe.predict(test) == test_labels).mean()),
            "knn": float((knn.predict(test) == test_labels).mean()),
            "kmeans_nmi": float(normalized_mutual_info_score(test_labels, clusters))}
