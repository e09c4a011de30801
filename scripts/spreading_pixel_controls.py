#!/usr/bin/env python
"""`gentool finetune`'s label-spreading head on pixels, without any encoder: the controls of the
semi-supervised table in docs/benchmarks.md.

Two feature sets of the training and test images: the standardised pixels (what
`finetune.spreading.pixel_control=true` measures inside the command) and the first
`--components` PCA components of the pixels, whitened, fitted on the training images (a strong
unlearned feature, not a `gentool finetune` option). Each gets the command's head with its
default settings (gentool.label_spreading: cosine k-NN graph, alpha, iterations, class mass
normalisation) on the same labelled subsets (gentool.data.subsets.labelled_subset) for every
labels-per-class count and seed. The graph depends on the features only, so it is built once per
feature set. Prints one markdown table: mean ± std over the seeds, and each seed's accuracy.

    python scripts/spreading_pixel_controls.py --dataset fashion_mnist --labels 1 10 100 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from omegaconf import OmegaConf

from gentool.config import SpreadingOptions, setup
from gentool.data import build_data, take
from gentool.data.subsets import labelled_subset
from gentool.label_spreading import (class_mass_normalise, nearest, spread, spreading_matrix,
                                     unit_rows)


def standardised(train: torch.Tensor, test: torch.Tensor):
    """Pixels shifted and scaled by the training pixels' mean and std (dead pixels keep their
    scale), as SpreadingClassifier does to codes."""
    mean, std = train.mean(0), train.std(0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def whitened_pca(train: torch.Tensor, test: torch.Tensor, components: int):
    """The first `components` principal components of the training pixels, each scaled to unit
    variance over the training images."""
    mean = train.mean(0)
    _, singular, directions = torch.linalg.svd(train - mean, full_matrices=False)
    scale = singular[:components] / (len(train) - 1) ** 0.5
    project = directions[:components].T / scale
    return (train - mean) @ project, (test - mean) @ project


def accuracies(train, test, train_y, test_y, labels, seeds, options: SpreadingOptions):
    """{(labels per class, seed): test accuracy} of label spreading on these features."""
    train, test = unit_rows(train), unit_rows(test)
    matrix = spreading_matrix(nearest(train, train, options.neighbours, exclude_self=True))
    test_neighbours = nearest(test, train, options.neighbours)
    classes = int(train_y.max()) + 1
    found = {}
    for per_class in labels:
        for seed in seeds:
            subset = labelled_subset(train_y, per_class, seed)
            seeds_onehot = torch.zeros(len(train), classes)
            seeds_onehot[subset, train_y[subset]] = 1.0
            spreading = spread(matrix, seeds_onehot, options.alpha, options.iterations)
            scores = class_mass_normalise(spreading)[test_neighbours].sum(1)
            found[per_class, seed] = (scores.argmax(1) == test_y).float().mean().item()
    return found


def table(results: dict, labels, seeds) -> str:
    lines = ["| features | labels per class | accuracy % (mean ± std) | per seed | wall time |",
             "|---|---|---|---|---|"]
    for name, (found, seconds) in results.items():
        for per_class in labels:
            values = [100 * found[per_class, seed] for seed in seeds]
            deviation = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
            lines.append(f"| {name} | {per_class} | {statistics.mean(values):.1f}{deviation} | "
                         f"{', '.join(f'{v:.1f}' for v in values)} | {seconds:.0f} s |")
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--labels", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--components", type=int, default=50)
    args = parser.parse_args(argv)
    setup()
    torch.set_num_threads(1)
    from hydra import compose, initialize_config_module
    with initialize_config_module("gentool.configs", version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset={args.dataset}"])
    data = build_data(OmegaConf.merge(cfg.dataset, {"binarize": "none"}), args.data_dir, "cpu",
                      batch_size=512, seed=0, drop_last=False)
    train_x, train_y = take(data.train, data.train.num_examples)
    test_x, test_y = take(data.test, data.test.num_examples)
    train_x, test_x = train_x.flatten(1).double(), test_x.flatten(1).double()
    options = SpreadingOptions()
    results = {}
    for name, features in (
            ("standardised pixels", lambda: standardised(train_x, test_x)),
            (f"PCA-whitened pixels ({args.components} components)",
             lambda: whitened_pca(train_x, test_x, args.components))):
        start = time.time()
        train, test = (f.float() for f in features())
        results[name] = (accuracies(train, test, train_y, test_y, args.labels, args.seeds,
                                    options), time.time() - start)
    text = table(results, args.labels, args.seeds)
    print(text)
    return text


if __name__ == "__main__":
    main()
