"""Inception FID and KID through torchmetrics: the figures papers quote, as an optional extra.

They need `pip install 'gentool[inception]'` and the Inception weights, which torchmetrics
downloads once; offline, or without the extra, the user gets one sentence saying so.
"""

from __future__ import annotations

import torch

from gentool.errors import GentoolError


def inception_scores(real: torch.Tensor, fake: torch.Tensor, device: torch.device,
                     batch_size: int = 250) -> dict[str, float]:
    """FID and KID (mean) of images in [0, 1], [N, C, H, W]; grey images are repeated to RGB."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError as error:
        raise GentoolError("metrics=[inception] needs the optional extra: "
                           "pip install 'gentool[inception]' (torchmetrics with torch-fidelity)."
                           ) from error
    try:
        fid = FrechetInceptionDistance(feature=2048, normalize=True).to(device)
        kid = KernelInceptionDistance(subset_size=min(1000, len(real), len(fake)),
                                      normalize=True).to(device)
    except Exception as error:   # the weights download: URLError, OSError, RuntimeError, ...
        raise GentoolError(f"the Inception weights could not be loaded ({type(error).__name__}); "
                           "run once with network access so torchmetrics can cache them, or "
                           "drop inception from metrics=.") from error
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].to(device)
            if batch.shape[1] == 1:
                batch = batch.repeat(1, 3, 1, 1)
            fid.update(batch, real=is_real)
            kid.update(batch, real=is_real)
    return {"fid": float(fid.compute()), "kid": float(kid.compute()[0])}
