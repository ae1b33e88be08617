"""Swap check on real data: the five ISMRM 2012 challenge cases (../shared/data/ismrm2012),
separated with the defaults of ``vertebrafat separate``. Boxes drawn once from the anatomy
(tests/data/ismrm2012_masks.json): the median FF of each fat box must be above 60 %, of each
water box below 40 % (a swap turns 90 % fat into about 10 % and 5-30 % tissue into 70-95 %).
Skipped when the data are not there."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from vertebrafat.io.echoes import read_echoes
from vertebrafat.waterfat.separate import Separation
from vertebrafat.workflows.separate import separate_series

TESTS = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ismrm2012"
MASKS = json.loads((TESTS / "data" / "ismrm2012_masks.json").read_text())["cases"]
FAT_ABOVE, WATER_BELOW = 60.0, 40.0


@cache
def separated(case: str) -> Separation:
    return separate_series(read_echoes(DATA / f"{case}.mat"))


def _boxes() -> list[object]:
    params = []
    for case, boxes in MASKS.items():
        for box in boxes:
            marks = [pytest.mark.xfail(strict=True, reason=box["known_failure"])] if (
                "known_failure" in box) else []
            params.append(pytest.param(case, box, marks=marks,
                                       id=f"{case}-{box['what'].replace(' ', '-')}"))
    return params


@pytest.mark.skipif(not DATA.is_dir(), reason=f"ISMRM 2012 data not found at {DATA}")
@pytest.mark.parametrize(("case", "box"), _boxes())
def test_fat_is_in_the_fat_image_and_water_in_the_water_image(case: str, box: dict) -> None:
    sep = separated(case)
    region = (box["slice"], slice(*box["rows"]), slice(*box["cols"]))
    ff = float(np.median(sep.ff_percent[region]))
    if box["tissue"] == "fat":
        assert ff > FAT_ABOVE, f"case {case} {box['what']}: median FF {ff:.1f} %"
    else:
        assert ff < WATER_BELOW, f"case {case} {box['what']}: median FF {ff:.1f} %"
