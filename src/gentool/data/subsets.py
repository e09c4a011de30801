"""Few-label subsets of a labelled split, for semi-supervised fine-tuning."""

from __future__ import annotations

import torch

from gentool.errors import GentoolError


def labelled_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of exactly `per_class` examples of every class, drawn with `seed` (sorted).

    The same (labels, per_class, seed) always gives the same subset, and a larger per_class
    with the same seed contains the smaller one (each class's examples are taken in one seeded
    order), so accuracy curves over per_class compare nested label sets.
    """
    labels = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    chosen = []
    for cls in torch.unique(labels).tolist():
        members = order[labels[order] == cls]
        if len(members) < per_class:
            raise GentoolError(f"labels_per_class={per_class} but class {cls} has only "
                               f"{len(members)} training examples; lower labels_per_class.")
        chosen.append(members[:per_class])
    return torch.cat(chosen).sort().values
