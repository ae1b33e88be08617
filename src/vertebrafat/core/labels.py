"""Label convention (VerSe / SPINEPS) and level names, colours.

0 background, 8-17 T1-T10 (15 T8, 16 T9, 17 T10; bodies above T11 in a long field of view),
18 T11, 19 T12, 28 T13, 20-24 L1-L5, 25 L6, 26 sacrum (S1). Only vertebral bodies are labelled.
The binary vertebral-body mask is every label but the sacrum (:func:`body_mask`): the reference
study's foreground, and the class ``probability.nii.gz`` holds, so masks, probabilities and
references agree on what is foreground.
"""

from typing import Final

import numpy as np
import numpy.typing as npt

LEVEL_OF_LABEL: Final[dict[int, str]] = {
    **{8 + k: f"T{k + 1}" for k in range(10)},  # 8-17 T1-T10 (bodies above T11 in a long FOV)
    18: "T11",
    19: "T12",
    28: "T13",
    20: "L1",
    21: "L2",
    22: "L3",
    23: "L4",
    24: "L5",
    25: "L6",
    26: "S1",
}
LABEL_OF_LEVEL: Final[dict[str, int]] = {v: k for k, v in LEVEL_OF_LABEL.items()}

LUMBAR_LABELS: Final[tuple[int, ...]] = (20, 21, 22, 23, 24)
SACRUM_LABEL: Final = 26
# Thoracic bodies a lumbar field of view shows above L1 (T11, T12, and T13 where there is one).
THORACIC_LABELS: Final[tuple[int, ...]] = (18, 19, 28)

# Cranio-caudal order of the labels (top first).
CRANIOCAUDAL_ORDER: Final[tuple[int, ...]] = (*range(8, 18), 18, 19, 28, 20, 21, 22, 23, 24, 25, 26)

# RGB colours (0-255) per label, used in QC pictures and the ITK-SNAP / Slicer label tables.
COLOUR_OF_LABEL: Final[dict[int, tuple[int, int, int]]] = {
    18: (120, 120, 255),
    19: (80, 160, 255),
    28: (60, 200, 255),
    20: (230, 25, 75),
    21: (60, 180, 75),
    22: (255, 225, 25),
    23: (0, 130, 200),
    24: (245, 130, 48),
    25: (145, 30, 180),
    26: (170, 110, 40),
}


def body_mask(labels: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """The vertebral bodies of a label map: every label but background and the sacrum.

    A binary mask (0/1) is all body.

    Examples
    --------
    >>> body_mask([0, 20, 24, 26, 19, 1]).tolist()
    [False, True, True, False, True, True]
    """
    arr = np.asarray(labels)
    return np.asarray((arr > 0) & (arr != SACRUM_LABEL))


def level_order_key(level: str) -> tuple[int, str]:
    """Sort key putting level names in cranio-caudal order (T1 first, S1 last).

    Unknown names ("?", "C7") sort after every known level, alphabetically among themselves.

    Examples
    --------
    >>> sorted(["S1", "L2", "T12", "?", "L1"], key=level_order_key)
    ['T12', 'L1', 'L2', 'S1', '?']
    """
    label = LABEL_OF_LEVEL.get(level)
    return (CRANIOCAUDAL_ORDER.index(label) if label in CRANIOCAUDAL_ORDER else 99, level)


def present_labels(labels: npt.ArrayLike) -> list[int]:
    """The nonzero values of a label map, ascending (``np.unique`` less 0; for 8- and 16-bit
    unsigned maps counted with ``np.bincount``, twice as fast on a study's label map).

    Examples
    --------
    >>> present_labels(np.array([[0, 24, 20], [24, 0, 26]], dtype=np.uint8))
    [20, 24, 26]
    >>> present_labels([0.0, 3.0, 1.0])
    [1, 3]
    """
    arr = np.asarray(labels)
    if arr.dtype in (np.uint8, np.uint16):
        counts = np.bincount(arr.ravel(), minlength=1)
        return [int(v) for v in np.flatnonzero(counts[1:]) + 1]
    return [int(v) for v in np.unique(arr) if v]
