"""Model card freshness: the shipped card's figures were computed with the code that ships."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vertebrafat.train.fingerprint import (
    VALIDATION_CODE,
    code_fingerprint,
    source_fingerprint,
    stale_reason,
)

CARD = Path(__file__).resolve().parents[2] / "src/vertebrafat/models/vertebrafat-unet-default.json"

LOGIC = "def name(k):\n    return 'L' + str(k)\n"


@pytest.mark.parametrize(
    ("other", "same"),
    [
        pytest.param('def name(k):\n    """Level name."""\n    return "L" + str(k)\n', True,
                     id="docstring-and-quotes"),
        pytest.param("def name(k):  # the level\n\n    return 'L' + str(k)\n", True,
                     id="comment-and-blank-line"),
        pytest.param("def name(k):\n    return 'L' + str(k + 1)\n", False, id="logic"),
        pytest.param("def name(j):\n    return 'L' + str(j)\n", False, id="renamed-argument"),
    ],
)
def test_source_fingerprint_sees_logic_not_layout(other: str, same: bool) -> None:
    assert (source_fingerprint(other) == source_fingerprint(LOGIC)) is same


def test_shipped_card_is_fresh() -> None:
    """Fails when the labeller, pre/post-processing or validation code changed after the card's
    figures were computed: rerun
    ``vertebrafat train --revalidate src/vertebrafat/models/vertebrafat-unet-default.onnx
    --test work-data/phantom_test`` (README: how the phantom data sets are made)."""
    card = json.loads(CARD.read_text())
    assert stale_reason(card) is None, stale_reason(card)
    assert card["validation_fingerprint"]["code_modules"] == list(VALIDATION_CODE)


def test_stale_cards_are_told_apart() -> None:
    card = json.loads(CARD.read_text())
    assert "no validation_fingerprint" in str(stale_reason({**card, "validation_fingerprint": 0}))
    other_model = {**card, "sha256": "0" * 64}
    assert "another ONNX file" in str(stale_reason(other_model))
    old_code = {**card, "validation_fingerprint": {**card["validation_fingerprint"],
                                                   "code": "f" * 64}}
    assert "code changed" in str(stale_reason(old_code))
    assert len(code_fingerprint()) == 64
