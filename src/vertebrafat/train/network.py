"""The 2D U-Net, parameterised by data (features, dropout, normalisation), never by subclassing.

``reference`` reproduces the study's network (zhoji/verteseg ``code/model.py``): two 3x3
convolutions with ReLU per level, dropout between them, 2x2 max pooling, 2x2 transposed-convolution
decoder, features 16-32-64-128-256, one sigmoid output. ``default`` is the shipped configuration,
chosen by measurement (see the model card and ``benchmarks/bench_segment.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and input geometry of one model configuration.

    ``pixel_spacing_mm`` is the in-plane spacing the slices are resampled to before the network;
    ``context_mm`` the distances of the 2.5D water context planes (see
    :class:`vertebrafat.core.model_card.ModelCard`).
    """

    name: str
    features: tuple[int, ...]
    dropout: tuple[float, ...]
    batch_norm: bool
    pixel_spacing_mm: float
    context_mm: tuple[float, ...] = ()


_DEFAULT = NetworkConfig(
    name="default",
    features=(8, 16, 32, 64, 128),
    dropout=(0.0, 0.0, 0.0, 0.1, 0.2),
    batch_norm=True,
    pixel_spacing_mm=1.25,
)
CONFIGS: dict[str, NetworkConfig] = {
    "reference": NetworkConfig(
        name="reference",
        features=(16, 32, 64, 128, 256),
        dropout=(0.1, 0.1, 0.2, 0.2, 0.3),
        batch_norm=False,
        pixel_spacing_mm=1.0,
    ),
    "default": _DEFAULT,
    # the default network with 2.5D water context planes 4 and 8 mm to each side
    "context": replace(_DEFAULT, name="context", context_mm=(4.0, 8.0)),
    # the default at 1.0 mm pixels, and with the reference's 16-256 filters (batch norm kept):
    # the two variants of the configuration comparison (src/vertebrafat/models/README.md)
    "fine": replace(_DEFAULT, name="fine", pixel_spacing_mm=1.0),
    "wide": replace(_DEFAULT, name="wide", features=(16, 32, 64, 128, 256)),
    # the default at 1.5 mm pixels: 0.69x the pixels of 1.25 mm, for the inference target
    "coarse": replace(_DEFAULT, name="coarse", pixel_spacing_mm=1.5),
}


def _block(c_in: int, c_out: int, *, dropout: float, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout) if batch_norm else nn.Dropout(dropout))
    layers.append(nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batch_norm))
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """2D U-Net: ``(batch, in_channels, H, W)`` -> logits ``(batch, out_channels, H, W)``.

    ``H`` and ``W`` must be multiples of ``2 ** (len(features) - 1)`` (16 for five levels).
    The network returns logits; :func:`probabilities` applies sigmoid (one output) or softmax.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        features: tuple[int, ...] = (16, 32, 64, 128, 256),
        dropout: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0),
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        if len(dropout) != len(features):
            raise ValueError(f"dropout {dropout} must have one value per level {features}")
        self.down = nn.ModuleList()
        c_prev = in_channels
        for f, p in zip(features, dropout, strict=True):
            self.down.append(_block(c_prev, f, dropout=p, batch_norm=batch_norm))
            c_prev = f
        self.pool = nn.MaxPool2d(2)
        self.upconv = nn.ModuleList()
        self.up = nn.ModuleList()
        for f, p in zip(features[-2::-1], dropout[-2::-1], strict=True):
            self.upconv.append(nn.ConvTranspose2d(c_prev, f, 2, stride=2))
            self.up.append(_block(2 * f, f, dropout=p, batch_norm=batch_norm))
            c_prev = f
        self.head = nn.Conv2d(c_prev, out_channels, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # he_normal, as the study

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for upconv, block, skip in zip(self.upconv, self.up, reversed(skips), strict=True):
            x = block(torch.cat([upconv(x), skip], dim=1))
        return self.head(x)


def build_network(config: NetworkConfig, *, in_channels: int, out_channels: int) -> UNet:
    """The U-Net of ``config`` with the given numbers of input planes and outputs."""
    return UNet(
        in_channels,
        out_channels,
        features=config.features,
        dropout=config.dropout,
        batch_norm=config.batch_norm,
    )


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid for one output channel, softmax over channels otherwise."""
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


def gflops_per_slice(net: UNet, *, height: int, width: int) -> float:
    """Multiply-adds x 2 of convolutions for one ``height x width`` slice, in GFLOP."""
    total = 0
    h, w = height, width
    hooks = []

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            c_in = module.in_channels // module.groups
            if isinstance(module, nn.Conv2d):
                total += 2 * k * c_in * output.numel() // output.shape[0]
            else:
                total += 2 * k * module.out_channels * inputs[0].numel() // inputs[0].shape[0]

    for m in net.modules():
        hooks.append(m.register_forward_hook(count))
    try:
        with torch.no_grad():
            net.eval()
            net(torch.zeros(1, net.in_channels, h, w))
    finally:
        for hk in hooks:
            hk.remove()
    return total / 1e9
