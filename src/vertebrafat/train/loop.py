"""The training loop: cached slices, random crops, augmentation, masked Dice + cross-entropy,
best checkpoint by validation Dice, a checkpoint every epoch (resumable), deterministic per seed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vertebrafat.core.model_card import ModelCard
from vertebrafat.segmentation.inference import pad_width
from vertebrafat.stats.overlap import dice
from vertebrafat.train.augment import AugmentConfig, augment
from vertebrafat.train.dataset import BACKGROUND_OR_RIB, RIB_CLASS, CachedSlices
from vertebrafat.train.network import UNet


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings; ``crop_mm`` is the side of the square training crop.

    ``keep``: the weights the run ends with. ``"last"`` (default): the last epoch's, so the
    validation subjects only watch the run and their figures stay held out. ``"best"``: the
    epoch with the best validation Dice, chosen on the validation subjects themselves (their
    figures are then no longer a held-out measurement).
    """

    epochs: int = 60
    seed: int = 0
    samples_per_epoch: int = 512
    batch_size: int = 16
    learning_rate: float = 3e-3
    crop_mm: float = 200.0
    time_limit_s: float = math.inf
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    keep: str = "last"

    def __post_init__(self) -> None:
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}, not {self.keep!r}")


KEEP = ("last", "best")


@dataclass
class History:
    """What the loop has done so far (stored in the checkpoint)."""

    epoch: int = 0
    best_dice: float = -1.0
    best_epoch: int = 0
    elapsed_s: float = 0.0
    rows: list[dict[str, float]] = field(default_factory=list)


def masked_loss(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (or BCE for one output) + soft Dice of the foreground classes, both only over
    ``known`` pixels. ``logits`` ``(n, classes, h, w)``, ``target`` long ``(n, h, w)``.

    With four classes (the last one the rib class), target ``BACKGROUND_OR_RIB`` means "background
    or rib, unknown which": its cross-entropy is that of the two classes together and the rib
    Dice leaves those pixels out. The Dice term averages the foreground classes present in the
    batch's known truth."""
    w = known.float()
    denom = w.sum().clamp_min(1.0)
    if logits.shape[1] == 1:
        fg = (target > 0).float()
        ce = (
            F.binary_cross_entropy_with_logits(logits[:, 0], fg, reduction="none") * w
        ).sum() / denom
        probs, onehot = torch.sigmoid(logits), fg.unsqueeze(1)
        wm = w.unsqueeze(1)
    else:
        logp = F.log_softmax(logits, dim=1)
        either = target == BACKGROUND_OR_RIB
        cls = torch.where(either, torch.zeros_like(target), target)
        nll = -logp.gather(1, cls.unsqueeze(1))[:, 0]
        if logits.shape[1] > RIB_CLASS:
            nll = torch.where(either, -torch.logaddexp(logp[:, 0], logp[:, RIB_CLASS]), nll)
        ce = (nll * w).sum() / denom
        probs = logp.exp()[:, 1:]
        onehot = F.one_hot(cls, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
        wm = w.unsqueeze(1).expand(-1, logits.shape[1] - 1, -1, -1)
        if logits.shape[1] > RIB_CLASS:
            rib_w = (w * (~either).float()).unsqueeze(1)
            wm = torch.cat([wm[:, : RIB_CLASS - 1], rib_w, wm[:, RIB_CLASS:]], dim=1)
    inter = (probs * onehot * wm).sum(dim=(0, 2, 3))
    total = ((probs + onehot) * wm).sum(dim=(0, 2, 3))
    dice = (2 * inter + 1.0) / (total + 1.0)
    # a class absent from the batch's known truth has no Dice term: its smoothed Dice would
    # push that class's probability to zero everywhere (small classes, such as ribs, seen in
    # a few crops only, would never be learnt); cross-entropy still charges false positives
    present = (onehot * wm).sum(dim=(0, 2, 3)) > 0
    if not bool(present.any()):
        return ce
    return ce + (1 - dice[present]).mean()


def _crops(
    data: Sequence[CachedSlices], picks: np.ndarray, side: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ts, ks = [], [], []
    for subj, sl in picks:
        d = data[subj]
        x, t, k = d.x[sl], d.target[sl], d.known[sl]
        pr, pc = max(0, side - x.shape[1]), max(0, side - x.shape[2])
        if pr or pc:
            x = np.pad(x, ((0, 0), (pr // 2, pr - pr // 2), (pc // 2, pc - pc // 2)))
            t = np.pad(t, ((pr // 2, pr - pr // 2), (pc // 2, pc - pc // 2)))
            k = np.pad(k, ((pr // 2, pr - pr // 2), (pc // 2, pc - pc // 2)))
        r0 = int(rng.integers(0, x.shape[1] - side + 1))
        c0 = int(rng.integers(0, x.shape[2] - side + 1))
        xs.append(x[:, r0 : r0 + side, c0 : c0 + side])
        ts.append(t[r0 : r0 + side, c0 : c0 + side])
        ks.append(k[r0 : r0 + side, c0 : c0 + side])
    return (
        torch.from_numpy(np.stack(xs)),
        torch.from_numpy(np.stack(ts).astype(np.int64)),
        torch.from_numpy(np.stack(ks)),
    )


def _sample(data: Sequence[CachedSlices], n: int, rng: np.random.Generator) -> np.ndarray:
    """Dataset-balanced draws of (subject, slice): dataset, then subject, then slice."""
    datasets = sorted({d.dataset for d in data})
    by_ds = {ds: [i for i, d in enumerate(data) if d.dataset == ds] for ds in datasets}
    out = np.empty((n, 2), dtype=np.int64)
    for j in range(n):
        members = by_ds[datasets[int(rng.integers(len(datasets)))]]
        subj = members[int(rng.integers(len(members)))]
        out[j] = (subj, int(rng.integers(data[subj].x.shape[0])))
    return out


def validation_scores(
    net: UNet, data: Sequence[CachedSlices], *, divisor: int = 16
) -> tuple[float, float | None]:
    """(body Dice, rib Dice): means over subjects on the cached slices (known pixels only); the
    rib Dice over the subjects with rib truth, ``None`` without a rib class or such subjects."""
    net.eval()
    scores, ribs = [], []
    with torch.no_grad():
        for d in data:
            (r0, r1), (c0, c1) = pad_width(d.x.shape[2], divisor), pad_width(d.x.shape[3], divisor)
            x = torch.from_numpy(np.pad(d.x, ((0, 0), (0, 0), (r0, r1), (c0, c1))))
            logits = torch.cat([net(x[i : i + 16]) for i in range(0, x.shape[0], 16)])
            logits = logits[:, :, r0 : logits.shape[2] - r1, c0 : logits.shape[3] - c1]
            best = None if logits.shape[1] == 1 else logits.argmax(1).numpy()
            pred = (logits[:, 0] > 0).numpy() if best is None else best == 1
            scores.append(dice((d.target == 1) & d.known, pred & d.known))
            if logits.shape[1] > RIB_CLASS and best is not None and (d.target == RIB_CLASS).any():
                ribs.append(dice((d.target == RIB_CLASS) & d.known, (best == RIB_CLASS) & d.known))
    body = float(np.mean(scores)) if scores else float("nan")
    return body, (float(np.mean(ribs)) if ribs else None)


def _planes(card: ModelCard) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    intensity = tuple(i for i, c in enumerate(card.channels) if c in ("water", "fat"))
    intensity += _context_planes(card)
    n = card.n_values
    optional = tuple((card.channels.index(c), n + j) for j, c in enumerate(card.optional_channels))
    return intensity, optional


def _water_planes(card: ModelCard) -> tuple[int, ...]:
    """The water image's plane and its context planes (water of the neighbouring slices)."""
    own = (card.channels.index("water"),) if "water" in card.channels else ()
    return own + _context_planes(card)


def _context_planes(card: ModelCard) -> tuple[int, ...]:
    """The water context planes (neighbouring slices), after the channels' own planes."""
    return tuple(range(len(card.channels), card.n_values))


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_network(
    net: UNet,
    card: ModelCard,
    train_data: Sequence[CachedSlices],
    val_data: Sequence[CachedSlices],
    out: Path,
    *,
    options: TrainOptions,
    resume: bool = False,
    on_epoch: Callable[[History], None] | None = None,
) -> History:
    """Train ``net`` in place; leaves the last epoch's weights in ``net``, or with
    ``options.keep == "best"`` the best epoch's (by validation Dice, see the loop).

    Writes ``out/checkpoint.pt`` after every epoch and ``out/best.pt`` when validation improves;
    ``resume=True`` continues from ``out/checkpoint.pt``. Per epoch, every random draw comes
    from generators seeded by ``(seed, epoch)``, so a resumed run equals an uninterrupted one.
    """
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.AdamW(net.parameters(), lr=options.learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=options.learning_rate,
        total_steps=options.epochs * max(1, options.samples_per_epoch // options.batch_size),
        pct_start=0.1,
    )
    hist = History()
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        hist = History(**state["history"])
    side = round(options.crop_mm / card.pixel_spacing_mm / card.divisor) * card.divisor
    intensity, optional = _planes(card)
    water = _water_planes(card)
    start = time.perf_counter() - hist.elapsed_s
    while hist.epoch < options.epochs and hist.elapsed_s < options.time_limit_s:
        epoch = hist.epoch
        torch.manual_seed(options.seed * 100_003 + epoch)
        gen = torch.Generator().manual_seed(options.seed * 100_003 + epoch)
        rng = np.random.default_rng([options.seed, epoch])
        picks = _sample(train_data, options.samples_per_epoch, rng)
        net.train()
        losses = []
        for b in range(0, len(picks) - options.batch_size + 1, options.batch_size):
            x, t, k = _crops(train_data, picks[b : b + options.batch_size], side, rng)
            x, t, k = augment(
                x,
                t,
                k,
                n_values=card.n_values,
                intensity_planes=intensity,
                optional_planes=optional,
                config=options.augment,
                generator=gen,
                water_planes=water,
            )
            loss = masked_loss(net(x), t, k)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        body, rib = validation_scores(net, val_data, divisor=card.divisor)
        # the best epoch is chosen on the body Dice, or with a rib class on the mean of the body
        # and rib Dice (the rib class is learnt later than the bodies: chosen on the body Dice
        # alone, the best epoch came before the ribs were)
        val = body if rib is None else (body + rib) / 2
        hist.epoch = epoch + 1
        hist.elapsed_s = time.perf_counter() - start
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_dice": body}
        if rib is not None:
            row["val_rib_dice"] = rib
        row["elapsed_s"] = hist.elapsed_s
        hist.rows.append(row)
        if val > hist.best_dice:
            hist.best_dice, hist.best_epoch = val, epoch + 1
            _save(out / "best.pt", {"net": net.state_dict(), "epoch": epoch + 1, "val_dice": val})
        _save(
            ckpt,
            {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "history": asdict(hist),
            },
        )
        if on_epoch is not None:
            on_epoch(hist)
    best = out / "best.pt"
    if options.keep == "best" and best.is_file():
        net.load_state_dict(torch.load(best, weights_only=False)["net"])
    net.eval()
    return hist
