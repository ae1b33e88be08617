"""Make ``docs/ismrm2012/ismrm2012_case{12,13,15,16,17}.png`` (not in the repository: the
challenge data are not redistributed, nor are pictures of them): water, fat, FF and field map
of the five ISMRM 2012 challenge cases, separated with the defaults of ``vertebrafat separate``.

Run: ``python docs/ismrm2012_figures.py`` (needs ../shared/data/ismrm2012). Each figure shows
every slice of its case, one row per slice (the cases have 3-5). ``--out DIR`` writes them
elsewhere.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from vertebrafat.io.echoes import read_echoes
from vertebrafat.qc.separation import render_separation
from vertebrafat.workflows.separate import separate_series

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ismrm2012"
CASES = (12, 13, 15, 16, 17)


def figure(case: int) -> Image.Image:
    series = read_echoes(DATA / f"{case}.mat")
    sep = separate_series(series)
    rows = [render_separation(np.abs(sep.water), np.abs(sep.fat), sep.ff_percent,
                              sep.field_map_hz, slice_index=k, panel_height=150,
                              title=f"ISMRM 2012 case {case}, {series.field_strength_t:g} T, "
                              f"{len(series.te_s)} echoes")
            for k in range(series.shape[0])]
    width = max(r.shape[1] for r in rows)
    stacked = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)),
                                     constant_values=255) for r in rows])
    return Image.fromarray(stacked).quantize(colors=128, dither=Image.Dither.NONE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ismrm2012")
    args = parser.parse_args()
    for case in CASES:
        buf = io.BytesIO()
        figure(case).save(buf, format="PNG", optimize=True)
        path = args.out / f"ismrm2012_case{case}.png"
        path.write_bytes(buf.getvalue())
        print(f"{path} {len(buf.getvalue()) // 1024} KiB")


if __name__ == "__main__":
    main()
