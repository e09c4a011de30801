"""Principal component analysis: the linear baseline every autoencoder is compared against."""

from __future__ import annotations

import torch


class PCA:
    """The top `components` principal directions of train data [N, D] (flattened), by SVD.

    It has the capabilities of a linear autoencoder (encode, decode, reconstruct), so the
    evaluation runs on it exactly as on a trained model.
    """

    def __init__(self, train: torch.Tensor, components: int):
        x = train.detach().flatten(1).double()
        if not 1 <= components <= min(x.shape):
            raise ValueError(f"PCA with {components} components needs 1 <= components <= "
                             f"min(N, D) = {min(x.shape)}")
        self.mean = x.mean(dim=0)
        _, _, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        self.basis = vh[:components]                 # [components, D], orthonormal rows
        self.shape = tuple(train.shape[1:])
        self.latent_dim = components

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1).double() - self.mean) @ self.basis.T

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        flat = codes.double() @ self.basis + self.mean
        return flat.view(codes.shape[0], *self.shape).float()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)).to(x.dtype)
