"""The checks behind the README's account of ISMRM 2012 case 12 (subcutaneous fat separated at
10-45 % FF), run on cases 12, 13, 15 and 16 for comparison.

Run: ``python docs/ismrm2012_case12_checks.py`` (needs ../shared/data/ismrm2012; about a
minute). Per case and slice it prints:

- ``fat@water``: the median FF of the bright fat (magnitude-only FF above 85 %) with the field
  taken from the clean water tissue around it (magnitude-only and complex FF both under 10 %),
  interpolated as the phasor ``exp(2 pi i field / period)`` by Laplace's equation (Jacobi
  iterations inside the body), each voxel free within 25 Hz of it; and the share above 60 %.
- ``offset``: where each bright-fat voxel's best fit with FF above 60 % puts the field, less the
  interpolated field (Hz, wrapped into one period): the median, and the share within 37.5 Hz
  of it.
- ``residual``: the median relative residual (over the signal power) of the fit at the
  interpolated field (any FF) and of the best fit above 60 % FF (any field).

and per case:

- ``ratios``: ``s1 s3 / s2^2`` and ``s2 s4 / s3^2`` of the purest, brightest fat (magnitude-only
  FF above 95 %, first echo above half the 99th percentile; free of the field and of R2*, so
  for pure fat they depend only on the fat spectrum and the echo times): the data's median
  magnitude and angle against the 6-peak model's (partial-volume fat moves them).

Then, for case 12's lateral fat box, each three-echo subset's fit (three complex echoes fit
water, fat, field and R2* exactly, whatever the tissue).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from vertebrafat.io.echoes import read_echoes
from vertebrafat.waterfat.model import clockwise, fat_phasor
from vertebrafat.waterfat.separate import separate
from vertebrafat.workflows.separate import separate_series

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ismrm2012"
MASKS = json.loads((ROOT / "tests" / "data" / "ismrm2012_masks.json").read_text())["cases"]
CASES = (12, 13, 15, 16)
R2STAR = np.arange(0.0, 301.0, 25.0)
C128 = npt.NDArray[np.complex128]
F64 = npt.NDArray[np.float64]


def fit(y: C128, te: F64, c: C128, psi: F64) -> tuple[F64, F64]:
    """FF (%) and relative residual of each voxel ``y (V, echoes)`` at its field ``psi (V,)``,
    water and fat complex, R2* the best of ``R2STAR``."""
    best, ff = np.full(len(y), np.inf), np.zeros(len(y))
    power = np.sum(np.abs(y) ** 2, axis=1)
    for r2 in R2STAR:
        e = np.exp((-r2 + 2j * np.pi * psi[:, None]) * te[None])
        a = np.stack([e, c[None] * e], axis=2)
        ah = np.conj(a).transpose(0, 2, 1)
        x = np.linalg.solve(ah @ a, ah @ y[:, :, None])
        res = np.sum(np.abs(y - (a @ x)[:, :, 0]) ** 2, axis=1) / power
        w, f = x[:, 0, 0], x[:, 1, 0]
        better = res < best
        best[better] = res[better]
        ff[better] = 100 * np.real(f * np.conj(w + f))[better] / np.abs(w + f)[better] ** 2
    return ff, best


def interpolated(field: F64, known: npt.NDArray[np.bool_], inside: npt.NDArray[np.bool_],
                 period: float) -> F64:
    """``field`` where ``known``, carried over ``inside`` as a harmonic phasor."""
    value = np.where(known, np.exp(2j * np.pi * field / period), 0)
    u = value.copy()
    for _ in range(3000):
        mean = (np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1) + np.roll(u, -1, 1)) / 4
        u = np.where(known, value, np.where(inside, mean, 0))
    return np.angle(u) * period / (2 * np.pi)


def case_checks(case: int) -> None:
    series = read_echoes(DATA / f"{case}.mat")
    te = np.asarray(series.te_s)
    c = fat_phasor(te, series.field_strength_t)
    echoes = clockwise(series.echoes, precession_clockwise=series.precession_clockwise)
    period = 1 / float(np.mean(np.diff(te)))
    mag = separate(np.abs(series.echoes), te, series.field_strength_t, mode="magnitude")
    cpx = separate_series(series)
    assert cpx.field_map_hz is not None
    ratios = [c[k] * c[k + 2] / c[k + 1] ** 2 for k in range(2)]
    for s in range(series.shape[0]):
        first = np.abs(echoes[0, s])
        signal = first > 0.15 * np.percentile(np.abs(echoes[0]), 99)
        water = ndi.binary_erosion(signal & (mag.ff_percent[s] < 10)
                                   & (np.abs(cpx.ff_percent[s]) < 10))
        fat = signal & (mag.ff_percent[s] > 85) & (first > 0.3 * np.percentile(first, 99))
        inside = ndi.binary_fill_holes(ndi.binary_closing(signal, iterations=3))
        psi_w = interpolated(cpx.field_map_hz[s].astype(np.float64), water, inside, period)[fat]
        y = echoes[:, s][:, fat].T.astype(np.complex128)
        ff_w = np.full(len(y), np.nan)
        res_w = np.full(len(y), np.inf)
        for d in np.arange(-25.0, 26.0, 5.0):
            ff, res = fit(y, te, c, psi_w + d)
            better = res < res_w
            ff_w[better], res_w[better] = ff[better], res[better]
        res_f, psi_f = np.full(len(y), np.inf), np.zeros(len(y))
        for psi in np.arange(-period / 2, period / 2, 3.0):
            ff, res = fit(y, te, c, np.full(len(y), psi))
            better = (ff > 60) & (res < res_f)
            res_f[better], psi_f[better] = res[better], psi
        offset = (psi_f - psi_w + period / 2) % period - period / 2
        centre = float(np.median(offset))
        print(f"case {case} slice {s}: {fat.sum():5d} fat voxels  fat@water "
              f"{np.median(ff_w):5.1f} % ({np.mean(ff_w > 60):.2f} above 60 %)  offset "
              f"{centre:+5.0f} Hz ({np.mean(np.abs(offset - centre) <= 37.5):.2f} within 37.5 Hz)"
              f"  residual {100 * np.median(res_w):.2f} % at the water field, "
              f"{100 * np.median(res_f):.2f} % at the best fit above 60 %")
    first = np.abs(echoes[0])
    pure = echoes[:, (mag.ff_percent > 95) & (first > 0.5 * np.percentile(first, 99))].T
    data = [pure[:, k] * pure[:, k + 2] / pure[:, k + 1] ** 2 for k in range(2)]
    text = "  ".join(f"{np.median(np.abs(q)):.2f} at {np.degrees(np.median(np.angle(q))):+.0f} deg"
                     f" (model {abs(m):.2f} at {np.degrees(np.angle(m)):+.0f})"
                     for q, m in zip(data, ratios, strict=True))
    print(f"case {case}: ratios of {len(pure)} pure-fat voxels {text}")


def three_echo_subsets() -> None:
    series = read_echoes(DATA / "12.mat")
    te = np.asarray(series.te_s)
    c = fat_phasor(te, series.field_strength_t)
    box = next(b for b in MASKS["12"] if "known_failure" in b)
    region = (slice(None), box["slice"], slice(*box["rows"]), slice(*box["cols"]))
    y = series.echoes[region].reshape(len(te), -1).T.astype(np.complex128)
    for left_out in range(len(te)):
        keep = [k for k in range(len(te)) if k != left_out]
        best, ff_best = np.full(len(y), np.inf), np.zeros(len(y))
        for psi in np.arange(-400.0, 400.0, 2.0):
            ff, res = fit(y[:, keep], te[keep], c[keep], np.full(len(y), psi))
            better = res < best
            best[better], ff_best[better] = res[better], ff[better]
        print(f"case 12 {box['what']}, echo {left_out + 1} left out: FF "
              f"{np.median(ff_best):5.1f} %, relative residual {100 * np.median(best):.3f} %")


def main() -> None:
    for case in CASES:
        case_checks(case)
    three_echo_subsets()


if __name__ == "__main__":
    main()
