"""The sparse autoencoder ("linear decoder") of UNIQUE and of its gradient version.

Papers: D. Temel, M. Prabhushankar, G. AlRegib, "UNIQUE: Unsupervised Image Quality
Estimation", IEEE Signal Processing Letters 2016 (the activation index), and G. Kwon,
M. Prabhushankar, D. Temel, G. AlRegib, "Distorted Representation Space Characterization
Through Backpropagated Gradients", ICIP 2019 (seed 001, the gradient index). Both train the
UFLDL "linear decoder": 8x8 colour patches as 192-vectors, ``a = sigmoid(W1 x + b1)`` (400
hidden units), ``x_hat = W2 a + b2`` (linear), with

    J = 1/(2m) sum ||x_hat - x||^2 + decay/2 (||W1||^2 + ||W2||^2) + beta sum_j KL(rho || rho_hat_j)

(``rho`` the sparsity target 0.035, ``rho_hat_j`` unit j's mean activation over the batch,
``beta`` 5, ``decay`` 3e-3). The module also holds the training patches' mean patch and ZCA
matrix (buffers, saved with the weights), so one file describes the whole transform.

It lives here, not in :mod:`robust.models` (the image-classifier registry): it maps patch
vectors, not images; the quality indices that use it are registered in :mod:`robust.gradient_features.iqa.indices`.
"""

from __future__ import annotations

import torch
from torch import nn

PATCH = 8
CHANNELS = 3
VISIBLE = PATCH * PATCH * CHANNELS  # 192
HIDDEN = 400


class SparseAutoencoder(nn.Module):
    """192 -> 400 sigmoid -> 192 linear; ``forward(x)`` on whitened patch vectors [m, 192]
    returns ``(x_hat, a)``. ``mean_patch`` [192] and ``zca`` [192, 192] are the training
    patches' whitening (identity until :meth:`set_whitening`)."""

    def __init__(self, visible: int = VISIBLE, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.encoder = nn.Linear(visible, hidden)
        self.decoder = nn.Linear(hidden, visible)
        # UFLDL's initialisation: uniform in +-sqrt(6 / (visible + hidden + 1)), zero biases
        bound = (6.0 / (visible + hidden + 1)) ** 0.5
        for layer in (self.encoder, self.decoder):
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)
        self.register_buffer("mean_patch", torch.zeros(visible))
        self.register_buffer("zca", torch.eye(visible))

    def set_whitening(self, mean_patch: torch.Tensor, zca: torch.Tensor) -> None:
        self.mean_patch.copy_(mean_patch)
        self.zca.copy_(zca)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.encode(x)
        return self.decoder(a), a


def sparse_autoencoder_loss(model: SparseAutoencoder, x: torch.Tensor, *, sparsity: float = 0.035, beta: float = 5.0,
                            decay: float = 3e-3) -> torch.Tensor:
    """UFLDL's sparse linear-decoder cost ``J`` (module doc) of whitened patches ``x`` [m, 192]."""
    x_hat, a = model(x)
    reconstruction = 0.5 * (x_hat - x).pow(2).sum() / x.shape[0]
    weight_decay = 0.5 * decay * (model.encoder.weight.pow(2).sum() + model.decoder.weight.pow(2).sum())
    rho_hat = a.mean(dim=0).clamp(1e-6, 1 - 1e-6)
    kl = (sparsity * torch.log(sparsity / rho_hat) + (1 - sparsity) * torch.log((1 - sparsity) / (1 - rho_hat))).sum()
    return reconstruction + weight_decay + beta * kl
