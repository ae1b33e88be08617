"""Batch augmentation suited to sagittal water-fat MRI, on torch tensors, from an explicit
generator (same generator state -> same batch).

Geometry: small rotation, scaling and shift (images bilinear, targets nearest). Intensity on the
water and fat planes: gain, gamma, smooth multiplicative bias field, Gaussian noise, and a
resolution change (block-average then linear upsampling). Channel dropout: each optional
channel is zeroed together with its presence plane with ``p_channel_drop``. Field-of-view cut
(``p_fov_cut``, off by default): the image ends inside the lower or upper part of the spine,
as a lumbar-only protocol placed low or high cuts it (the sacrum or T12 out of view, L5 or L1
cut); the rows beyond the edge become zero in every plane and leave the loss. Dark discs
(``p_dark_discs``, off by default): the water signal of the gaps between labelled bodies (the
discs) is brought down to about the bodies' own, as in desiccated, degenerated discs, which
lose the bright water signal that otherwise outlines every body.
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
    p_fov_cut: float = 0.0
    fov_cut_reach: float = 0.35
    p_dark_discs: float = 0.0
    dark_discs: tuple[float, float] = (0.5, 1.0)
    disc_level: tuple[float, float] = (0.4, 1.1)
    disc_rows: int = 17


FOREGROUND_CLASSES = (1, 2)  # vertebral body, sacrum: the spine whose ends a cut removes


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


def _spine(target: torch.Tensor) -> torch.Tensor:
    """Where ``target`` holds one of ``FOREGROUND_CLASSES`` (bool, same shape)."""
    return torch.isin(target, torch.tensor(FOREGROUND_CLASSES, dtype=target.dtype))


def fov_cut(
    x: torch.Tensor,
    target: torch.Tensor,
    known: torch.Tensor,
    cfg: AugmentConfig,
    g: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """With ``cfg.p_fov_cut``, move the field of view's lower (or upper) edge into the spine.

    Rows run head to foot. The edge falls at random between the last (first) foreground row and
    ``cfg.fov_cut_reach`` of the spine's extent inside it; every plane beyond it becomes 0, as
    outside the image, and ``known`` False there. Three draws per slice, whatever the data."""
    n, _, h, _ = x.shape
    draws = torch.rand(n, 3, generator=g)
    rows = (_spine(target) & known).any(dim=2)  # (n, h)
    x, known = x.clone(), known.clone()
    for i in range(n):
        if float(draws[i, 0]) >= cfg.p_fov_cut or not bool(rows[i].any()):
            continue
        present = torch.nonzero(rows[i])[:, 0]
        first, last = int(present[0]), int(present[-1])
        reach = cfg.fov_cut_reach * (last - first)
        if float(draws[i, 1]) < 0.5:  # lower edge
            edge = min(h, max(0, round(last + 1 - float(draws[i, 2]) * reach)))
            x[i, :, edge:] = 0.0
            known[i, edge:] = False
        else:
            edge = min(h, max(0, round(first + float(draws[i, 2]) * reach)))
            x[i, :, :edge] = 0.0
            known[i, :edge] = False
    return x, known


def disc_gaps(target: torch.Tensor, rows: int) -> torch.Tensor:
    """The gaps between labelled bodies (classes 1 and 2) along the rows (head to foot) that are
    shorter than ``rows`` (odd): a closing of the spine by a vertical line, less the bodies.
    ``target`` ``(n, h, w)``; returns ``(n, h, w)`` bool."""
    fg = _spine(target)
    f = fg.float().unsqueeze(1)
    pad = rows // 2
    grown = F.max_pool2d(f, (rows, 1), stride=1, padding=(pad, 0))
    closed = -F.max_pool2d(-grown, (rows, 1), stride=1, padding=(pad, 0))
    return (closed[:, 0] > 0.5) & ~fg


def dark_discs(
    x: torch.Tensor,
    target: torch.Tensor,
    water_planes: tuple[int, ...],
    cfg: AugmentConfig,
    g: torch.Generator,
) -> torch.Tensor:
    """With ``cfg.p_dark_discs``, pull the water planes in :func:`disc_gaps` (edges softened
    over 3 x 3 pixels) towards ``level`` x the median water signal of the slice's bodies: with
    weight d uniform in ``cfg.dark_discs``, ``level`` uniform in ``cfg.disc_level``. A disc then
    reads as dark as or darker than the bodies it used to outline. Three draws per slice."""
    n = x.shape[0]
    draws = torch.rand(n, 3, generator=g)
    on = draws[:, 0] < cfg.p_dark_discs
    if not bool(on.any()) or not water_planes:
        return x
    gap = disc_gaps(target, cfg.disc_rows).float().unsqueeze(1)
    soft = F.avg_pool2d(gap, 3, stride=1, padding=1, count_include_pad=False)
    x = x.clone()
    (w_lo, w_hi), (l_lo, l_hi) = cfg.dark_discs, cfg.disc_level
    body = target == 1
    for i in torch.nonzero(on)[:, 0].tolist():
        if not bool(body[i].any()):
            continue
        weight = (w_lo + (w_hi - w_lo) * float(draws[i, 1])) * soft[i]
        for p in water_planes:
            level = (l_lo + (l_hi - l_lo) * float(draws[i, 2])) * x[i, p][body[i]].median()
            x[i, p] = x[i, p] * (1 - weight[0]) + level * weight[0]
    return x


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
    water_planes: tuple[int, ...] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a batch ``x`` ``(n, planes, h, w)``, ``target`` ``(n, h, w)`` long,
    ``known`` ``(n, h, w)`` bool.

    ``intensity_planes`` index the water/fat planes; ``optional_planes`` are
    ``(value_plane, presence_plane)`` pairs eligible for channel dropout; the first ``n_values``
    planes are image values (presence planes are never resampled with noise); ``water_planes``
    (the water image and its context planes) are those the dark discs change.
    """
    cfg, g = config, generator
    n, _, h, w = x.shape
    x, target, known = _geometry(x, target, known, cfg, g)
    if cfg.p_dark_discs > 0:  # no draw otherwise: earlier recipes keep their random stream
        x = dark_discs(x, target, water_planes, cfg, g)
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
    if cfg.p_fov_cut > 0:  # no draw otherwise: earlier recipes keep their random stream
        x, known = fov_cut(x, target, known, cfg, g)
    return x, target, known
