"""Principal component analysis: the linear baseline every autoencoder is compared against."""

from __future__ import annotations

import torch


def baseline_components(code_size: int, train: torch.Tensor) -> int:
    """The components of the PCA baseline of a `code_size`-D code: as many as the code has, but
    no more than the min(N, D) directions that train data [N, ...] have."""
    return min(code_size, *train.flatten(1).shape)


def fewer_components_note(code_size: int, train: torch.Tensor) -> str:
    """Why the PCA baseline of a `code_size`-D code has fewer components than the code ("" when
    it has as many): at D components PCA reconstructs its input exactly, so a baseline that met a
    larger code there matched nothing a model of that size has to learn."""
    examples, dims = train.flatten(1).shape
    components = baseline_components(code_size, train)
    if components == code_size:
        return ""
    if components == dims:
        return f"all {dims} input dimensions, an exact copy; the code has {code_size}"
    return f"one per train example ({examples}); the code has {code_size}"


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
