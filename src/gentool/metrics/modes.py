"""Mode-collapse metrics of 2-D samples from a known mixture of Gaussians.

The definitions follow VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018). PacGAN
reports the number of modes and the high-quality percentage on 2,500 generated samples, which is
why the engine scores that many.
"""

from __future__ import annotations

import math

import torch

# A sample within this many standard deviations of its nearest centre is "high quality".
HIGH_QUALITY_SIGMAS = 3.0


def mode_metrics(samples: torch.Tensor, centres: torch.Tensor, sigma: float) -> dict[str, float]:
    """How well `samples` [N, D] cover the equal-weight mixture with `centres` [M, D] and `sigma`.

    Every sample is assigned to its nearest centre (Euclidean distance); it is high quality when
    that distance is below 3 * sigma.

    - modes: the number of centres that are the nearest centre of at least one high-quality
      sample (so a sample far from every centre covers no mode).
    - high_quality: the fraction (0..1) of samples that are high quality.
    - reverse_kl: KL(P_model || uniform) = sum_k p_k log(p_k * M), where p_k is the share of ALL
      samples (high quality or not) whose nearest centre is k, and 0 log 0 = 0. It is 0 when the
      samples spread evenly over the centres and log M when they all sit on one. With no
      high-quality sample it is NaN (not reported): the histogram then describes only which
      centre is least far from samples that match none, and samples scattered over the whole
      plane would score a near-perfect 0.
    - spread: how wide the high-quality samples lie around their centres, in units of sigma:
      sqrt(mean over them of |x - centre|^2 / D). Samples of the mixture itself score about
      0.97 (a Gaussian cut at 3 sigma; in 2-D exactly sqrt(1 - 4.5 e^-4.5 / (1 - e^-4.5))); a
      generator that puts its draws tighter than the data, which the high-quality share
      rewards, scores below that. NaN with no high-quality sample.

    Non-finite samples (a diverged generator) are never high quality.
    """
    if samples.dim() != 2 or centres.dim() != 2 or samples.shape[1] != centres.shape[1] \
            or samples.shape[0] == 0:
        raise ValueError(f"mode_metrics needs samples [N, D] with N > 0 and centres [M, D]; got "
                         f"{list(samples.shape)} and {list(centres.shape)}")
    # float64: the distances decide the 3-sigma boundary, and N*M is small (2,500 x 25).
    x = samples.detach().to(torch.float64)
    c = centres.detach().to(device=x.device, dtype=torch.float64)
    distances = (x[:, None, :] - c[None, :, :]).pow(2).sum(dim=2).sqrt()
    distances = torch.nan_to_num(distances, nan=math.inf)
    nearest_distance, nearest = distances.min(dim=1)
    high_quality = nearest_distance < HIGH_QUALITY_SIGMAS * sigma

    num_centres = c.shape[0]
    covered = torch.bincount(nearest[high_quality], minlength=num_centres) > 0
    p = torch.bincount(nearest, minlength=num_centres).to(torch.float64) / x.shape[0]
    present = p > 0                                   # 0 log 0 = 0
    reverse_kl = (p[present] * (p[present] * num_centres).log()).sum()
    if not high_quality.any():
        reverse_kl = spread = math.nan
    else:
        reverse_kl = max(0.0, float(reverse_kl))      # >= 0: clamps rounding below zero
        squared = nearest_distance[high_quality].pow(2)
        spread = float((squared.mean() / x.shape[1]).sqrt()) / sigma
    return {"modes": float(covered.sum()), "high_quality": float(high_quality.double().mean()),
            "reverse_kl": reverse_kl, "spread": spread}
