"""Batch augmentation suited to sagittal water-fat MRI, on torch tensors, from an explicit
generator (same generator state -> same batch).

Geometry: small rotation, scaling and shift (images bilinear, targets nearest). Intensity on the
water and fat planes: gain, gamma, smooth multiplicative bias field, Gaussian noise, and a
resolution change (block-average then linear upsampling). Channel dropout: each optional
channel is zeroed together with its presence plane with ``p_channel_drop``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentations (angles in degrees, shifts as a fraction of size)."""

    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.15)
    shift_fraction: float = 0.08
    gain: tuple[float, float] = (0.8, 1.2)
    gamma: tuple[float, float] = (0.7, 1.5)
    bias: float = 0.3
    noise_sd: float = 0.04
    p_lowres: float = 0.25
    p_channel_drop: float = 0.5


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _geometry(
    x: torch.Tensor,
    target: torch.Tensor,
    known: torch.Tensor,
    cfg: AugmentConfig,
    g: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    angle = _uniform(g, n, -cfg.rotate_deg, cfg.rotate_deg) * math.pi / 180
    scale = _uniform(g, n, *cfg.scale)
    shift = _uniform(g, 2 * n, -cfg.shift_fraction, cfg.shift_fraction).view(n, 2) * 2
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) / scale
    theta[:, 0, 1] = -torch.sin(angle) / scale
    theta[:, 1, 0] = torch.sin(angle) / scale
    theta[:, 1, 1] = torch.cos(angle) / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    lab = torch.stack([target.float(), known.float()], dim=1)
    lab = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x, lab[:, 0].long(), lab[:, 1] > 0.5


def _bias_field(n: int, h: int, w: int, amplitude: float, g: torch.Generator) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    basis = torch.stack([yy, xx, yy * yy, xx * xx, yy * xx])  # (5, h, w)
    coef = (torch.rand(n, 5, generator=g) * 2 - 1) * amplitude
    return torch.exp(torch.einsum("nk,khw->nhw", coef, basis))


def augment(
    x: torch.Tensor,
    target: torch.Tensor,
    known: torch.Tensor,
    *,
    n_values: int,
    intensity_planes: tuple[int, ...],
    optional_planes: tuple[tuple[int, int], ...],
    config: AugmentConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a batch ``x`` ``(n, planes, h, w)``, ``target`` ``(n, h, w)`` long,
    ``known`` ``(n, h, w)`` bool.

    ``intensity_planes`` index the water/fat planes; ``optional_planes`` are
    ``(value_plane, presence_plane)`` pairs eligible for channel dropout; the first ``n_values``
    planes are image values (presence planes are never resampled with noise).
    """
    cfg, g = config, generator
    n, _, h, w = x.shape
    x, target, known = _geometry(x, target, known, cfg, g)
    x = x.clone()
    if intensity_planes:
        idx = list(intensity_planes)
        v = x[:, idx].clamp_min(0)
        v = v * _uniform(g, n, *cfg.gain).view(n, 1, 1, 1)
        v = v ** _uniform(g, n, *cfg.gamma).view(n, 1, 1, 1)
        v = v * _bias_field(n, h, w, cfg.bias, g).unsqueeze(1)
        x[:, idx] = v
    values = x[:, :n_values]
    values = values + torch.randn(values.shape, generator=g) * _uniform(g, n, 0, cfg.noise_sd).view(
        n, 1, 1, 1
    )
    lowres = torch.rand(n, generator=g) < cfg.p_lowres
    if lowres.any():
        sub = values[lowres]
        factor = 2 if torch.rand(1, generator=g).item() < 0.5 else 3
        small = F.avg_pool2d(
            sub,
            (factor, 1) if torch.rand(1, generator=g).item() < 0.5 else (1, factor),
            ceil_mode=True,
        )
        values[lowres] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    x[:, :n_values] = values
    for value_plane, presence_plane in optional_planes:
        drop = (torch.rand(n, generator=g) < cfg.p_channel_drop) | (
            x[:, presence_plane].amax(dim=(1, 2)) < 0.5
        )
        x[drop, value_plane] = 0.0
        x[drop, presence_plane] = 0.0
    return x, target, known
