"""Full-reference image quality: PSNR and SSIM of outputs against targets, images in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per image [N]: 10 log10(1 / MSE), in dB, for pixel values in [0, 1] (inf if equal)."""
    mse = (outputs.float() - targets.float()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(outputs: torch.Tensor, targets: torch.Tensor, window: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Per image [N]: the structural similarity of Wang et al. (2004), mean over the valid
    positions of an 11x11 Gaussian window (sigma 1.5) and over channels, with C1 = (0.01)^2 and
    C2 = (0.03)^2 for a dynamic range of 1. Images smaller than the window use a window of
    their smaller side."""
    x, y = outputs.double(), targets.double()
    size = min(window, x.shape[-1], x.shape[-2])
    channels = x.shape[1]
    kernel = gaussian_window(size, sigma).to(x.device).expand(channels, 1, size, size)

    def blur(t):
        return F.conv2d(t, kernel, groups=channels)       # valid positions only

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / \
        ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(dim=1)
