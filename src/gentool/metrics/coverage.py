"""Class coverage: which classes a classifier sees in a model's samples, against the data's."""

from __future__ import annotations

import torch


def class_coverage(predicted: torch.Tensor, data_labels: torch.Tensor,
                   num_classes: int) -> dict[str, float]:
    """Coverage of the predicted classes [N] of samples, against the labels [M] of real data.

    - classes_covered: how many classes at least one sample is predicted as.
    - class_kl: KL(p_samples || p_data) in nats over the class histograms, 0 log 0 = 0: 0 when the
      samples' classes follow the data's, log(1/p_c) when every sample falls in class c. This
      direction stays finite when a class is missing from the samples, which is the failure to
      measure (mode dropping), while every class has data.
    """
    p = torch.bincount(predicted.long().cpu(), minlength=num_classes).double()
    q = torch.bincount(data_labels.long().cpu(), minlength=num_classes).double()
    p, q = p / p.sum(), q / q.sum()
    present = p > 0
    kl = (p[present] * (p[present] / q[present]).log()).sum()
    return {"classes_covered": float(present.sum()), "class_kl": max(0.0, float(kl))}


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor,
                       num_classes: int) -> torch.Tensor:
    """[num_classes] float64: for each class c, the fraction of the examples labelled c whose
    predicted class [N] is c (NaN for a class with no example).

    For a class-conditional generator, `labels` are the classes its samples were drawn for and
    `predicted` a classifier's reading of them: class c's value says how often asking for c gives
    something recognisable as c. For real data it is the classifier's recall of each class.
    """
    predicted, labels = predicted.long().cpu(), labels.long().cpu()
    if predicted.shape != labels.shape:
        raise ValueError(f"per_class_accuracy needs one prediction per label; got "
                         f"{list(predicted.shape)} and {list(labels.shape)}")
    total = torch.bincount(labels, minlength=num_classes).double()
    right = torch.bincount(labels[predicted == labels], minlength=num_classes).double()
    return torch.where(total > 0, right / total.clamp(min=1), torch.nan)
