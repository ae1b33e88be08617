"""Level naming: instances, order along the spine, anchors, flags (levels/).

Stacks are built as labelled blocks in tiny arrays laid out like MyoSegmenTUM: axis 0 = slices
(left-right), axis 1 = rows (cranio-caudal, row 0 superior), axis 2 = cols (antero-posterior).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.levels.instances import bridge_missing_slices, split_instances
from vertebrafat.levels.labeller import label_vertebrae
from vertebrafat.levels.sacrum import body_shape, looks_like_sacrum

# voxel -> RAS: i -> -x (L), j -> -z (I), k -> -y (P); 2 mm voxels (a body is 1.9 mL)
AFFINE = np.array(
    [[-2.0, 0, 0, 10], [0, 0, -2.0, 20], [0, -2.0, 0, 60], [0, 0, 0, 1]], dtype=np.float64
)
H, GAP = 6, 3  # body height and disc height in rows


def stack(
    n: int, *, sacrum: bool = False, top: int = 2, rows: int | None = None
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``n`` bodies (5 slices x 6 rows x 8 cols) from row ``top`` down, optional long sacrum.

    Returns the truth label map (bodies 1..n top to bottom, sacrum n+1) and each body's rows.
    """
    spans = [(top + k * (H + GAP), top + k * (H + GAP) + H) for k in range(n)]
    if sacrum:
        start = top + n * (H + GAP)
        spans.append((start, start + 16))
    total = rows if rows is not None else spans[-1][1] + 2
    truth = np.zeros((7, total, 12), dtype=np.uint8)
    for k, (a, b) in enumerate(spans):
        truth[1:6, max(a, 0) : min(b, total), 2:10] = k + 1
    return truth, spans


def names_top_down(labels: np.ndarray, truth: np.ndarray) -> list[int]:
    """The label given to each truth body (1..n)."""
    return [int(np.bincount(labels[truth == k]).argmax()) for k in range(1, truth.max() + 1)]


def test_five_bodies_without_sacrum_are_l1_to_l5_from_the_bottom() -> None:
    truth, _ = stack(5)
    result = label_vertebrae(truth > 0, AFFINE)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24]
    assert result.anchor == "bottom"
    assert result.study_flags == ("no_sacrum", "uncertain_level")
    assert result.labels.dtype == np.uint8
    assert set(np.unique(result.labels[truth == 0])) == {0}


def test_sacrum_shaped_lowest_body_anchors_the_count() -> None:
    truth, _ = stack(6, sacrum=True)  # T12, L1..L5 above a long sacrum
    result = label_vertebrae(truth > 0, AFFINE)
    assert names_top_down(result.labels, truth) == [19, 20, 21, 22, 23, 24, 26]
    assert result.anchor == "sacrum"
    assert result.study_flags == ()


@pytest.mark.parametrize(
    "lateral", [pytest.param(25, id="off-spine"), pytest.param(0, id="on-spine")]
)
def test_small_piece_off_the_spine_is_not_a_body(lateral: int) -> None:
    """A 0.64 mL piece 50 mm lateral to the column (an iliac-bone false positive) between L5 and
    the sacrum is dropped: the count has no gap and it gets no name. The same piece inside the
    column, on a body, is kept as part of the spine (merged into the body it sits on)."""
    truth, spans = stack(5, sacrum=True)  # L1..L5 above a long sacrum
    truth = np.pad(truth, ((0, 25), (0, 0), (0, 0)))
    row = spans[4][1]  # just below L5, level with the L5/S1 disc
    body = truth > 0
    body[3 + lateral : 7 + lateral, row : row + 4, 4:9] = True  # 0.64 mL
    result = label_vertebrae(body, AFFINE)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]
    assert result.study_flags == ()
    piece = np.zeros(body.shape, dtype=bool)
    piece[3 + lateral : 7 + lateral, row : row + 4, 4:9] = True
    piece &= truth == 0
    assert (result.labels[piece] > 0).all() == (lateral == 0)


def test_sacrum_mask_from_the_model_anchors_the_count() -> None:
    truth, spans = stack(4)
    sacrum = np.zeros(truth.shape, dtype=bool)
    sacrum[1:6, spans[-1][0] : spans[-1][1], 2:10] = True  # the model calls the lowest a sacrum
    result = label_vertebrae(truth > 0, AFFINE, sacrum=sacrum)
    assert names_top_down(result.labels, truth) == [22, 23, 24, 26]
    assert result.anchor == "sacrum"


def test_six_lumbar_bodies_between_t12_cue_and_sacrum_are_transitional() -> None:
    """The sacrum and the T12 cue bracket six bodies: concordant cues, so an L6 is declared
    (flagged ``transitional``, not uncertain)."""
    truth, spans = stack(7, sacrum=True)  # T12, L1..L6, sacrum
    cue = np.zeros(truth.shape, dtype=bool)
    cue[3, spans[0][0] + 2, 5] = True
    result = label_vertebrae(truth > 0, AFFINE, t12=cue)
    assert names_top_down(result.labels, truth) == [19, 20, 21, 22, 23, 24, 25, 26]
    assert result.study_flags == ("transitional",)
    assert result.confidence == "high"


def test_six_bodies_below_t12_without_a_sacrum_are_an_uncertain_l6() -> None:
    """No sacrum in view: the sixth body below T12 may be L6 or S1, and one cue cannot say."""
    truth, spans = stack(7)  # T12, L1..L6
    cue = np.zeros(truth.shape, dtype=bool)
    cue[1:6, spans[0][0] : spans[0][1], 2:10] = True
    result = label_vertebrae(truth > 0, AFFINE, t12=cue)
    assert names_top_down(result.labels, truth) == [19, 20, 21, 22, 23, 24, 25]
    assert result.study_flags == ("no_sacrum", "transitional", "uncertain_level")


def test_four_lumbar_bodies_between_t12_cue_and_sacrum_are_transitional() -> None:
    truth, spans = stack(5, sacrum=True)  # T12, L1..L4, sacrum (sacralised L5)
    cue = np.zeros(truth.shape, dtype=bool)
    cue[1:6, spans[0][0] : spans[0][1], 2:10] = True
    result = label_vertebrae(truth > 0, AFFINE, t12=cue)
    assert names_top_down(result.labels, truth) == [19, 20, 21, 22, 23, 26]
    assert result.study_flags == ("transitional",)


def test_t12_cue_without_sacrum_counts_down() -> None:
    truth, spans = stack(4)
    cue = np.zeros(truth.shape, dtype=bool)
    cue[1:6, spans[0][0] : spans[0][1], 2:10] = True
    result = label_vertebrae(truth > 0, AFFINE, t12=cue)
    assert names_top_down(result.labels, truth) == [19, 20, 21, 22]
    assert result.anchor == "t12"
    assert result.study_flags == ("no_sacrum",)


def _ribs_at(truth: np.ndarray, spans: list[tuple[int, int]], bodies: dict[int, str]) -> np.ndarray:
    """Rib blocks (1 slice x 3 rows x 3 cols) against body ``k`` (0-based) on its ``"both"``,
    ``"left"`` (slice 0) or ``"right"`` (slice 6) side, at the posterior half."""
    ribs = np.zeros(truth.shape, dtype=bool)
    for k, side in bodies.items():
        a = spans[k][0] + 1
        for sl, name in ((0, "left"), (6, "right")):
            if side in (name, "both"):
                ribs[sl, a : a + 3, 6:9] = True
    return ribs


def test_ribs_on_both_sides_mark_t12_and_reveal_an_l6() -> None:
    truth, spans = stack(8, sacrum=True)  # T11, T12, L1..L6, sacrum
    ribs = _ribs_at(truth, spans, {0: "both", 1: "both"})
    result = label_vertebrae(truth > 0, AFFINE, ribs=ribs)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24, 25, 26]
    assert result.study_flags == ("transitional",)
    assert not result.labels[ribs].any()


def test_ribs_on_t12_of_a_normal_spine_change_nothing() -> None:
    truth, spans = stack(7, sacrum=True)  # T11, T12, L1..L5, sacrum
    ribs = _ribs_at(truth, spans, {0: "both", 1: "both"})
    result = label_vertebrae(truth > 0, AFFINE, ribs=ribs)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24, 26]
    assert result.study_flags == ()


def test_a_rib_on_one_side_only_is_no_t12_cue() -> None:
    truth, spans = stack(8, sacrum=True)
    ribs = _ribs_at(truth, spans, {0: "both", 1: "right"})  # body 1's left rib missed
    result = label_vertebrae(truth > 0, AFFINE, ribs=ribs)
    # T12 would be body 0: seven lumbar bodies fit no count, so the rib cue does not rename the
    # spine (the sacrum names the bodies), but it disagrees with the sacrum: uncertain_level
    assert names_top_down(result.labels, truth) == [17, 18, 19, 20, 21, 22, 23, 24, 26]
    assert result.study_flags == ("uncertain_level",)
    verdicts = {c.name: c.verdict for c in result.cues}
    assert verdicts == {"sacrum_shape": "agrees", "t12_ribs": "disagrees"}
    assert result.confidence == "low"
    truth7, spans7 = stack(7, sacrum=True)
    lone = _ribs_at(truth7, spans7, {1: "left"})
    plain = label_vertebrae(truth7 > 0, AFFINE, ribs=lone)
    assert names_top_down(plain.labels, truth7) == [18, 19, 20, 21, 22, 23, 24, 26]
    assert plain.study_flags == ()


def test_ribs_against_a_lumbar_body_do_not_rename_the_spine() -> None:
    truth, spans = stack(7, sacrum=True)  # T11, T12, L1..L5, sacrum
    ribs = _ribs_at(truth, spans, {0: "both", 1: "both", 3: "both"})  # ribs also beside L2
    result = label_vertebrae(truth > 0, AFFINE, ribs=ribs)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24, 26]
    # the names stay the sacrum's; the rib cue (last rib-bearing body: L2) disagrees
    assert result.study_flags == ("uncertain_level",)
    assert result.naming()["cues"] == [
        {"cue": "sacrum_shape", "strength": "strong", "verdict": "agrees"},
        {"cue": "t12_ribs", "strength": "strong", "verdict": "disagrees"},
    ]


def test_stack_cut_at_the_top_is_flagged_partial_and_still_named() -> None:
    truth, _ = stack(5, top=-3)  # the top body keeps 3 of its 6 rows
    result = label_vertebrae(truth > 0, AFFINE)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24]
    assert result.level_flags == {20: ("partial_fov",)}
    assert result.flags()[20] == ("partial_fov", "no_sacrum", "uncertain_level")
    assert result.flags()[22] == ("no_sacrum", "uncertain_level")


def test_stack_cut_at_top_and_bottom_takes_the_bottom_cut_as_sacrum() -> None:
    # a lumbar field of view reaches the sacrum: what its inferior edge cuts is sacrum
    truth, _ = stack(5, top=-3, rows=5 * (H + GAP) - GAP - 6)
    result = label_vertebrae(truth > 0, AFFINE)
    assert names_top_down(result.labels, truth) == [21, 22, 23, 24, 26]
    assert result.level_flags == {21: ("partial_fov",), 26: ("partial_fov",)}
    assert result.anchor == "sacrum"
    assert result.study_flags == ()


def test_two_bodies_bridged_by_one_voxel_are_split_at_the_disc() -> None:
    truth, spans = stack(5)
    mask = truth > 0
    mask[3, spans[1][1] : spans[2][0], 5] = True  # one-voxel column through the L2/L3 disc
    result = label_vertebrae(mask, AFFINE)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24]
    assert (result.labels[mask & (truth == 0)] > 0).all()  # the bridge goes to a neighbour


def test_bridged_bodies_with_a_thick_bridge_are_split() -> None:
    truth, spans = stack(5)
    mask = truth > 0
    mask[2:5, spans[2][1] : spans[3][0], 4:7] = True  # 3 x 3 voxel pillar through a disc
    instances, n = split_instances(mask, AFFINE)
    assert n == 5
    assert len(np.unique(instances[truth == 3])) == 1


def test_one_body_in_two_lateral_pieces_stays_one_body() -> None:
    truth, _ = stack(5)
    mask = truth > 0
    mask[3] = False  # a missing mid slice splits every body left/right
    instances, n = split_instances(mask, AFFINE)
    assert n == 5
    assert [len(np.unique(instances[(truth == k) & mask])) for k in range(1, 6)] == [1] * 5


def test_a_lateral_sliver_level_with_a_disc_does_not_fuse_the_bodies_it_spans() -> None:
    truth, spans = stack(5)
    truth = np.pad(truth, ((8, 0), (0, 0), (0, 0)))  # bodies on slices 9-13
    mask = truth > 0
    # 1 slice x 11 rows x 6 cols (0.53 mL), 18 mm lateral: its S extent overlaps bodies 2
    # and 3 by 6 mm each (> half of a body's 10 mm), but its centre lies in the disc, within
    # neither body's S extent: it joins neither, and the naming leaves it out (one slice)
    mask[0, spans[1][0] + 2 : spans[2][0] + 4, 3:9] = True
    instances, n = split_instances(mask, AFFINE)
    assert n == 6
    assert len(np.unique(instances[0, spans[1][0] + 2 : spans[2][0] + 4, 3:9])) == 1
    assert len(np.unique(instances[truth == 2])) == 1
    assert np.unique(instances[truth == 2]) != np.unique(instances[truth == 3])
    assert names_top_down(label_vertebrae(mask, AFFINE).labels, truth) == [20, 21, 22, 23, 24]


def test_a_chain_of_side_by_side_joins_does_not_fuse_stacked_bodies() -> None:
    truth, _ = stack(3, top=-3)  # the top body cut by the field of view (120 voxels)
    truth = np.pad(truth, ((8, 0), (0, 0), (0, 0)))
    mask = truth > 0
    # 2 slices x 12 rows x 8 cols lateral (192 voxels): level with the cut body and with the
    # body below it; the cut body joins it first, and it then must not join the body below
    mask[0:2, 0:12, 2:10] = True
    instances, n = split_instances(mask, AFFINE)
    assert n == 3
    assert np.unique(instances[truth == 1]) != np.unique(instances[truth == 2])
    assert np.unique(instances[0:2, 0:12, 2:10]) == np.unique(instances[truth == 1])


def test_missing_body_leaves_a_gap_in_the_names() -> None:
    truth, _ = stack(6)
    mask = (truth > 0) & (truth != 3)  # the model missed L2
    result = label_vertebrae(mask, AFFINE)
    named = [int(np.bincount(result.labels[truth == k]).argmax()) for k in (1, 2, 4, 5, 6)]
    assert named == [19, 20, 22, 23, 24]
    assert result.study_flags == ("gap", "no_sacrum", "uncertain_level")


def test_speckle_is_dropped_but_a_fragment_on_the_border_is_kept() -> None:
    truth, _ = stack(5, top=4)
    mask = truth > 0
    mask[3, 0, 5] = True  # 1 voxel on the top face: a body cut by the FOV, kept
    mask[3, 47, 11] = True  # 1 voxel on the posterior face, kept
    assert split_instances(mask, AFFINE)[1] == 7
    speckle = np.zeros(mask.shape, dtype=bool)
    speckle[3, 46, 6] = True  # 1 voxel inside the volume: speckle, dropped
    assert split_instances(speckle, AFFINE)[1] == 0
    assert not split_instances(speckle, AFFINE)[0].any()


def _reorient(
    arr: np.ndarray, affine: np.ndarray, flips: tuple[bool, bool, bool], perm: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Flip and transpose an array, changing the affine so the world geometry is the same."""
    aff = affine.copy()
    for axis, flip in enumerate(flips):
        if flip:
            arr = np.flip(arr, axis=axis)
            shift = np.eye(4)
            shift[axis, axis] = -1.0
            shift[axis, 3] = arr.shape[axis] - 1
            aff = aff @ shift
    arr = np.transpose(arr, perm)
    new = np.eye(4)
    new[:, 3] = aff[:, 3]
    for j, p in enumerate(perm):
        new[:3, j] = aff[:3, p]
    return np.ascontiguousarray(arr), new


@pytest.mark.parametrize(
    ("flips", "perm"),
    [
        pytest.param((False, True, False), (0, 1, 2), id="rows-flipped"),
        pytest.param((True, True, True), (0, 1, 2), id="all-flipped"),
        pytest.param((False, False, False), (2, 1, 0), id="axes-reordered"),
        pytest.param((False, True, False), (1, 2, 0), id="flipped-and-reordered"),
    ],
)
def test_flipped_and_reordered_arrays_with_matching_affines_give_the_same_names(
    flips: tuple[bool, bool, bool], perm: tuple[int, ...]
) -> None:
    truth, _ = stack(6, sacrum=True)
    moved_truth, moved_affine = _reorient(truth, AFFINE, flips, perm)
    result = label_vertebrae(moved_truth > 0, moved_affine)
    assert names_top_down(result.labels, moved_truth) == [19, 20, 21, 22, 23, 24, 26]


@settings(max_examples=15, deadline=None)
@given(
    flips=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    perm=st.permutations([0, 1, 2]),
    n=st.integers(min_value=3, max_value=7),
)
def test_names_do_not_depend_on_array_order(
    flips: tuple[bool, bool, bool], perm: list[int], n: int
) -> None:
    truth, _ = stack(n)
    expected = label_vertebrae(truth > 0, AFFINE)
    moved_truth, moved_affine = _reorient(truth, AFFINE, flips, tuple(perm))
    result = label_vertebrae(moved_truth > 0, moved_affine)
    assert names_top_down(result.labels, moved_truth) == names_top_down(expected.labels, truth)


def test_empty_mask_gives_empty_labels() -> None:
    result = label_vertebrae(np.zeros((3, 4, 5), dtype=bool), AFFINE)
    assert result.anchor == "none"
    assert not result.labels.any()


@pytest.mark.parametrize(
    ("mask", "affine", "kwargs", "error"),
    [
        pytest.param(np.zeros((4, 4), bool), AFFINE, {}, InputError, id="2d-mask"),
        pytest.param(np.zeros((2, 3, 4), bool), np.eye(3), {}, GeometryError, id="3x3-affine"),
        pytest.param(
            np.zeros((2, 3, 4), bool), AFFINE, {"sacrum": np.zeros((2, 3, 5), bool)}, InputError,
            id="sacrum-shape",
        ),
    ],
)
def test_bad_inputs_raise(
    mask: np.ndarray, affine: np.ndarray, kwargs: dict[str, np.ndarray], error: type[Exception]
) -> None:
    with pytest.raises(error):
        label_vertebrae(mask, affine, **kwargs)


def test_a_lumbar_sized_lowest_body_is_not_a_sacrum() -> None:
    truth, _ = stack(5)
    shapes = [body_shape(truth == k, AFFINE) for k in range(1, 6)]
    assert not looks_like_sacrum(shapes[-1], shapes[:-1])
    sacral, _ = stack(5, sacrum=True)
    shapes = [body_shape(sacral == k, AFFINE) for k in range(1, 7)]
    assert looks_like_sacrum(shapes[-1], shapes[:-1])


MYO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "myosegmentum"


@pytest.mark.slow
def test_myosegmentum_truth_masks_are_named_exactly() -> None:
    if not MYO.is_dir():
        pytest.skip(f"MyoSegmenTUM data not found at {MYO}")
    import nibabel as nib

    subjects = sorted(p for p in MYO.iterdir() if (p / "labels.nii.gz").is_file())
    wrong = []
    for subject in subjects:
        img = nib.load(str(subject / "labels.nii.gz"))
        truth = np.asarray(img.dataobj)
        result = label_vertebrae(truth > 0, img.affine)
        named = [int(np.bincount(result.labels[truth == k]).argmax()) for k in range(20, 25)]
        if named != [20, 21, 22, 23, 24]:
            wrong.append((subject.name, named))
    assert len(subjects) == 30
    assert wrong == []


def test_sacrum_mask_speckle_away_from_the_sacrum_is_ignored() -> None:
    truth, _ = stack(5, sacrum=True)
    sacrum = truth == 6
    sacrum[3, 0, 0] = True  # a stray sacrum-class voxel at the top corner
    result = label_vertebrae(truth > 0, AFFINE, sacrum=sacrum)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]
    assert result.labels[3, 0, 0] == 0


@pytest.mark.parametrize("rows", [pytest.param(3, id="small-piece"), pytest.param(1, id="sliver")])
def test_small_pieces_below_the_last_body_are_sacrum(rows: int) -> None:
    start = 2 + 5 * (H + GAP)  # first row below the L5/S1 disc
    truth, _ = stack(5, rows=start + rows)
    mask = truth > 0
    mask[2:5, start:, 3:8] = True  # sacral top cut by the FOV (15 % of a body)
    result = label_vertebrae(mask, AFFINE)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24]
    assert set(np.unique(result.labels[:, start:])) == {0, 26}
    assert result.anchor == "sacrum"
    assert result.level_flags[26] == ("partial_fov",)


def test_sacral_segments_close_across_the_whole_endplate_are_one_sacrum() -> None:
    start = 2 + 5 * (H + GAP)
    truth, _ = stack(5, rows=start + H + 1 + 4)
    truth[1:6, start : start + H, 2:10] = 6  # S1, a full-size segment
    truth[1:6, start + H + 1 :, 2:10] = 6  # S2 one row below it (remnant disc), cut by the FOV
    rows_1_5_mm = AFFINE.copy()
    rows_1_5_mm[2, 1] = -1.5  # gaps centre to centre: discs 4.5 mm, S1/S2 3 mm
    result = label_vertebrae(truth > 0, rows_1_5_mm)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]
    assert result.anchor == "sacrum"


def test_a_body_reaching_the_sacrum_at_one_corner_is_not_fused_into_it() -> None:
    # myo30: the predicted L5 comes within 3 mm of the predicted S1 at one corner only
    start = 2 + 5 * (H + GAP)
    truth, _ = stack(5, rows=start + 3)
    truth[3, start - GAP : start, 2] = 5  # spur of L5, diagonal to the sacrum (2.8 mm)
    truth[2:5, start:, 3:8] = 6  # sacral top cut by the FOV
    result = label_vertebrae(truth > 0, AFFINE)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]



def test_single_voxel_specks_on_the_border_do_not_break_the_naming() -> None:
    # a poor mask (an undertrained model): 1-voxel pieces on the top edge are kept (they touch
    # the border) and have zero spread, which once divided the sacrum-shape test by zero
    truth, _ = stack(2)
    mask = truth > 0
    mask[0, 0, [0, 4, 8]] = True
    result = label_vertebrae(mask, AFFINE)
    assert names_top_down(result.labels, truth)[-1] == 24  # the lowest body is L5, no sacrum
    assert "no_sacrum" in result.study_flags


def test_a_one_voxel_speck_below_the_sacrum_class_changes_no_name() -> None:
    """MyoSegmenTUM myo38 as a quantised copy of the shipped model segmented it: the upper S1
    is "body" (0.33 of a lumbar body here, 0.38 there), the sacrum class lies beside it (the
    ala), and one voxel of "body" at the lower edge of the field of view below the class. The
    speck is no piece of the chain, so the S1 piece is taken into the sacrum as it is without
    the speck. It once left the class off the chain's end: S1 was named L5, every level one
    off, and no flag."""
    start = 2 + 6 * (H + GAP)  # first row below the L5/S1 disc
    truth, _ = stack(6, rows=start + 12)  # T12, L1..L5
    truth = np.pad(truth, ((0, 4), (0, 0), (0, 0)))
    truth[1:6, start : start + 2, 2:10] = 7  # upper S1, called "body"
    sacrum = np.zeros(truth.shape, dtype=bool)
    sacrum[6:9, start : start + 8, 2:10] = True  # the sacrum class beside it
    for speck in (False, True):
        mask = (truth > 0) | sacrum
        if speck:
            mask[8, start + 11, 5] = True  # on the lower edge: kept as an instance
        result = label_vertebrae(mask, AFFINE, sacrum=sacrum)
        assert names_top_down(result.labels, truth) == [19, 20, 21, 22, 23, 24, 26], speck
        assert set(np.unique(result.labels[sacrum])) == {26}
        assert result.anchor == "sacrum" and result.study_flags == ()


def test_the_sacrum_class_stays_unmerged_after_another_merge() -> None:
    """``merge_stacked_fragments`` never merges the protected instance (the sacrum class),
    also after it has merged another small piece (it once forgot which one it protected)."""
    from vertebrafat.levels.sacrum import body_shape
    from vertebrafat.levels.spine import merge_stacked_fragments, spine_order

    truth, spans = stack(6, rows=2 + 6 * (H + GAP) + 2)
    inst = truth.astype(np.int32)
    inst[1:6, spans[1][0] - 1, 2:10] = 7  # a one-row piece on top of the second body
    inst[1:6, spans[5][1], 2:10] = 8  # the sacrum class: one row under the last body
    shapes = [body_shape(inst == k, AFFINE) for k in range(1, 9)]
    order, _, merged = merge_stacked_fragments(spine_order(shapes), shapes, inst, AFFINE, keep=7)
    assert order == [0, 1, 2, 3, 4, 5, 7]
    assert (merged[1:6, spans[1][0] - 1, 2:10] == 2).all()  # the piece joined the body below
    assert (merged[1:6, spans[5][1], 2:10] == 8).all()


def test_bits_below_the_sacrum_class_join_its_tail() -> None:
    """MyoSegmenTUM myo31 with noise of 2 % of the water image: S1 is "body" above the sacrum
    class, and a 0.4 mL bit of the ala lies below the class. The bit joins the class's tail (it
    once kept the class off the chain's end: S1 was named L5, every level one off, no flag);
    a body-sized piece below the class does not (the class then sits on L5)."""
    from vertebrafat.levels.sacrum import body_shape
    from vertebrafat.levels.spine import class_tail

    truth, _ = stack(8)
    inst = truth.astype(np.int32)
    inst[inst == 8] = 0
    inst[3, 2 + 7 * (H + GAP), 2:6] = 8  # 4 voxels: 0.03 mL, 1.7 % of a body
    shapes = [body_shape(inst == k, AFFINE) for k in range(1, 9)]
    order = list(range(8))
    assert class_tail(order, shapes, protected=6) == 2  # the class and the bit
    assert class_tail(order[:7], shapes, protected=6) == 1  # the class alone, last
    assert class_tail(order, shapes, protected=5) == 0  # a body below it
    assert class_tail(order, shapes, protected=None) == 0


@pytest.mark.parametrize(("lateral", "kept"), [(0, True), (11, False)])
def test_a_tiny_bit_beside_the_spine_leaves_the_chain(lateral: int, kept: bool) -> None:
    """A 0.05-mL-plus bit (under 0.15 of a body) more than 20 mm left or right of the spine's
    curve is no piece of the chain (a bit of the ala between S1 and the sacrum class, with
    noise on MyoSegmenTUM myo38, stopped the tail from reaching S1); on the midline it stays."""
    from vertebrafat.levels.sacrum import body_shape
    from vertebrafat.levels.spine import off_spine

    truth, spans = stack(6)
    truth = np.pad(truth, ((0, 12), (0, 0), (0, 0)))
    row = spans[5][1] + 1
    truth[3 + lateral : 5 + lateral, row : row + 2, 4:8] = 7  # 16 voxels: 0.13 mL
    shapes = [body_shape(truth == k, AFFINE) for k in range(1, 8)]
    assert (6 in off_spine(shapes)) is not kept


def test_a_whole_body_reaching_the_inferior_edge_is_l5_not_sacrum() -> None:
    # myo41: the model's L5 leaks through the L5/S1 disc to the edge; at the full size of a
    # body it is not a sacral piece cut by the field of view
    truth, spans = stack(5)
    truth = truth[:, : spans[-1][1] + 1]
    truth[1:6, spans[-1][1] :, 2:10] = 5  # L5, one row taller, touching the inferior edge
    result = label_vertebrae(truth > 0, AFFINE)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24]
    assert "no_sacrum" in result.study_flags


def test_a_disc_bridged_over_16_mm_is_still_cut() -> None:
    # myo35: eroding up to 7 mm left the bridge; bodies 24 x 28 x 32 mm keep a core to 12 mm
    one_mm = np.diag([-1.0, -1.0, -1.0, 1.0])[:, [0, 2, 1, 3]]
    mask = np.zeros((24, 70, 32), dtype=bool)
    mask[:, 0:28] = True  # body 1
    mask[:, 36:64] = True  # body 2, below an 8 mm disc
    mask[4:20, 28:36, 8:24] = True  # the bridge: 16 x 16 mm through the whole disc
    inst, n = split_instances(mask, one_mm)
    assert n == 2
    assert len(np.unique(inst[:, 0:28])) == 1 and len(np.unique(inst[:, 36:64])) == 1
    assert inst[0, 0, 0] != inst[0, 63, 0]


def _stack_with_piece(piece_slices: slice, piece_rows: int) -> tuple[np.ndarray, int]:
    """T12, L1..L5, a piece between L5 and a long sacrum (label 99), the sacrum; 2 mm voxels."""
    truth, spans = stack(6, sacrum=False)
    rows = spans[-1][1] + GAP + piece_rows + GAP + 16 + 2
    out = np.zeros((7, rows, 12), dtype=np.uint8)
    out[:, : truth.shape[1]] = truth
    top = spans[-1][1] + GAP
    cols = slice(1, 11) if piece_rows > 2 else slice(2, 10)
    out[piece_slices, top : top + piece_rows, cols] = 99
    start = top + piece_rows + GAP
    out[1:6, start : start + 16, 2:10] = 7
    return out, top


@pytest.mark.parametrize(
    ("piece_slices", "piece_rows"),
    [pytest.param(slice(1, 6), 2, id="small-piece-between-l5-and-sacrum"),  # 0.64 mL
     pytest.param(slice(3, 4), 8, id="one-slice-sacral-sliver")],  # 0.64 mL, one slice
)
def test_pieces_that_are_not_bodies_are_not_counted(piece_slices: slice, piece_rows: int) -> None:
    """A small piece between L5 and the sacrum (0.33 of a body) and a sliver one sagittal
    slice wide are no vertebra: they get no label, the count runs over them (no L6, no
    transitional), and the labelling says how many pieces it left out."""
    truth, _ = _stack_with_piece(piece_slices, piece_rows)
    body = truth > 0
    result = label_vertebrae(body, AFFINE)
    assert [int(np.bincount(result.labels[truth == k]).argmax()) for k in (1, 2, 3, 4, 5, 6, 7)
            ] == [19, 20, 21, 22, 23, 24, 26]
    assert set(np.unique(result.labels[truth == 99])) == {0}
    assert result.dropped == 1
    assert result.study_flags == ()


def test_sacrum_class_on_l5_with_a_body_below_is_uncertain() -> None:
    """The model calls the true L5 "sacrum" (a real failure on unseen spines): a full-sized
    body below it, and the long true sacrum, disagree; the shifted names are flagged."""
    truth, _ = stack(6, sacrum=True)  # T12, L1..L5, sacrum
    on_l5 = truth == 6
    result = label_vertebrae(truth > 0, AFFINE, sacrum=on_l5)
    assert "uncertain_level" in result.study_flags
    assert result.confidence == "low"
    verdicts = {c.name: c.verdict for c in result.cues}
    assert verdicts["sacrum_class"] == "agrees"
    assert verdicts["body_below_sacrum"] == "disagrees"
    assert verdicts["sacrum_shape"] == "disagrees"


@pytest.mark.parametrize(
    ("n", "with_class", "with_t12", "confidence", "cues"),
    [pytest.param(6, True, True, "high", 3, id="sacrum-class-shape-and-t12"),
     pytest.param(6, True, False, "high", 2, id="sacrum-class-and-shape"),
     pytest.param(6, False, False, "medium", 1, id="sacrum-shape-only"),
     pytest.param(7, True, False, "medium", 1, id="class-on-a-short-s1-only")],
)
def test_confidence_counts_agreeing_strong_cues(
    n: int, with_class: bool, with_t12: bool, confidence: str, cues: int
) -> None:
    """Six bodies (T12, L1..L5) above a long sacrum; or seven bodies, the seventh a short S1
    that only the model's sacrum class tells from a lumbar body."""
    truth, spans = stack(n, sacrum=n == 6)
    t12 = np.zeros(truth.shape, dtype=bool)
    t12[3, spans[0][0] + 2, 5] = True
    result = label_vertebrae(truth > 0, AFFINE, sacrum=(truth == 7) if with_class else None,
                             t12=t12 if with_t12 else None)
    assert names_top_down(result.labels, truth) == [19, 20, 21, 22, 23, 24, 26]
    assert result.confidence == confidence
    assert result.study_flags == ()
    assert len(result.cues) == cues
    assert all(c.verdict == "agrees" for c in result.cues)


def test_no_anchor_is_one_weak_cue_and_uncertain() -> None:
    truth, _ = stack(5)
    result = label_vertebrae(truth > 0, AFFINE)
    assert result.naming() == {
        "anchor": "bottom", "confidence": "low", "flags": ["no_sacrum", "uncertain_level"],
        "cues": [{"cue": "lowest_body", "strength": "weak", "verdict": "agrees"}],
        "pieces_not_counted": 0, "cues_ignored": [],
    }


def test_two_bodies_fused_through_their_disc_are_cut_at_the_waist_and_flagged() -> None:
    """MyoSegmenTUM myo35 (a fold model's mask): L4 and L5 fused into one body the size of two,
    so the count from the sacrum was one short and every name one level off, without a flag.
    The fused body is cut at its waist (the bridged disc, narrower than the bodies): every
    body is named right, and the naming stays uncertain (the cut is inferred)."""
    truth, spans = stack(6, sacrum=True)  # T12, L1..L5, sacrum
    truth[1:6, spans[4][1] : spans[5][0], 3:9] = 5  # the L4/L5 disc bridged: one piece
    result = label_vertebrae(truth > 0, AFFINE)
    assert names_top_down(result.labels, truth) == [19, 20, 21, 22, 23, 24, 26]
    assert set(np.unique(result.labels[truth == 6])) == {24}  # L5 whole, and only L5
    naming = result.naming()
    assert naming["cues"] == [
        {"cue": "sacrum_shape", "strength": "strong", "verdict": "agrees"},
        {"cue": "body_sizes", "strength": "strong", "verdict": "disagrees"},
    ]
    assert naming["confidence"] == "low" and "uncertain_level" in result.study_flags
    # the same spine with the disc cut names right and stays certain
    whole, _ = stack(6, sacrum=True)
    assert label_vertebrae(whole > 0, AFFINE).study_flags == ()


@pytest.mark.parametrize(("fused", "confidence"), [(False, "medium"), (True, "low")])
def test_tail_grown_over_a_full_body_is_a_weak_cue(fused: bool, confidence: str) -> None:
    """When the sacral tail had to grow over a full-sized body fused to it (a bridged L5/S1
    disc in a fold model's mask of MyoSegmenTUM myo31 gave a silent one-level shift), the
    fragments cue is weak: the names stand but are flagged."""
    from vertebrafat.levels.naming import name_levels
    from vertebrafat.levels.sacrum import body_shape

    truth, _ = stack(7)
    inst = truth.astype(np.int32)
    shapes = [body_shape(inst == k, AFFINE) for k in range(1, 8)]
    naming = name_levels(list(range(7)), shapes, inst, None, None, 1, weak_tail=fused)
    assert naming.names == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert naming.cues[0].name == "sacral_fragments"
    assert naming.cues[0].strength == ("weak" if fused else "strong")
    assert naming.confidence == confidence
    assert ("uncertain_level" in naming.flags) is fused


@pytest.mark.parametrize(
    ("volumes", "found", "grown", "weak"),
    [
        pytest.param([30, 30, 30, 30, 5], 1, 1, False, id="one-small-fragment"),
        pytest.param([30, 30, 30, 30, 29, 5], 1, 2, True, id="grown-over-a-full-body"),
        pytest.param([30, 30, 30, 30, 10, 9], 2, 2, True, id="fragments-add-up-to-a-body"),
        pytest.param([30, 30, 30, 30, 4, 3], 2, 2, False, id="two-small-fragments"),
        pytest.param([30, 30, 30, 30, 30], 0, 0, False, id="no-tail"),
    ],
)
def test_tail_is_weak(volumes: list[float], found: int, grown: int, weak: bool) -> None:
    from vertebrafat.levels.sacrum import BodyShape
    from vertebrafat.levels.spine import tail_is_weak

    shapes = [BodyShape((0.0, 0.0, -30.0 * k), (10.0, 8.0, 6.0), (0.0, 0.0, 1.0), v, False)
              for k, v in enumerate(volumes)]
    assert tail_is_weak(list(range(len(volumes))), shapes, found=found, grown=grown) is weak


@pytest.mark.parametrize(
    ("grown_ml", "doubtful"),
    [
        pytest.param(11.4, False, id="upper-S1-0.38"),
        pytest.param(13.2, False, id="0.44"),
        pytest.param(13.5, True, id="0.45"),
        pytest.param(18.3, True, id="upper-S1-or-partial-L5-0.61"),
        pytest.param(21.9, True, id="cut-L5-0.73"),
        pytest.param(27.0, False, id="0.9-weak-instead"),
    ],
)
def test_a_tail_grown_over_a_piece_an_s1_and_an_l5_share_is_doubtful(
    grown_ml: float, doubtful: bool
) -> None:
    """Bodies above of 30 mL: a grown piece of 0.45-0.9 of them could be an upper S1 or an L5
    whose disc the mask bridged (myo39 cut 4 voxels short: 0.73, named one level off without a
    flag) or a partial L5 (0.52, below). The names stand and the ``tail_size`` cue objects:
    uncertain."""
    from vertebrafat.levels.naming import name_levels
    from vertebrafat.levels.sacrum import BodyShape, body_shape
    from vertebrafat.levels.spine import doubtful_tail

    volumes = [30.0, 30.0, 30.0, 30.0, grown_ml, 2.0]
    shapes = [BodyShape((0.0, 0.0, -30.0 * k), (10.0, 8.0, 6.0), (0.0, 0.0, 1.0), v, False)
              for k, v in enumerate(volumes)]
    assert doubtful_tail(list(range(6)), shapes, found=1, grown=2) is doubtful
    assert doubtful_tail(list(range(6)), shapes, found=1, grown=1) is False  # did not grow
    truth, _ = stack(7)
    inst = truth.astype(np.int32)
    boxes = [body_shape(inst == k, AFFINE) for k in range(1, 8)]
    naming = name_levels(list(range(7)), boxes, inst, None, None, 2, doubtful_tail=doubtful)
    assert naming.names == ["L1", "L2", "L3", "L4", "L5", "S1", "S1"]
    assert ("uncertain_level" in naming.flags) is doubtful
    assert any(c.name == "tail_size" and c.verdict == "disagrees" for c in naming.cues) is doubtful


ONE_MM = np.array([[-1.0, 0, 0, 0], [0, 0, -1.0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])


def test_a_disc_bridged_over_a_third_of_the_endplate_does_not_fuse_l5_into_the_sacrum() -> None:
    """A fold model's mask of MyoSegmenTUM myo31: the L5/S1 disc bridged to within 1 mm over a
    third of the endplate, down to a small sacral piece fused to the sacrum class. At a
    contact threshold of 0.25 the sacrum grew over L5 and every name moved up one level,
    without a flag; sacral segments touch over 0.46-1.2 of the endplate, bridged discs
    0.004-0.3, so 0.4 keeps L5 a body."""
    truth = np.zeros((34, 207, 34), np.uint8)  # 1 mm voxels, rows head to feet
    top = 2
    for k in range(5):  # L1-L5: 30 x 25 x 30 mm, L5 19 mm tall; 10 mm discs
        height = 19 if k == 4 else 25
        truth[2:32, top : top + height, 2:32] = k + 1
        bottom, top = top + height, top + height + 10
    truth[2:32, top : top + 6, 2:32] = 6  # a 6 mm sacral piece
    truth[2:32, bottom : top - 1, 2:11] = 5  # the bridge: 9 of 30 mm, to 1 mm above the piece
    sacrum = np.zeros(truth.shape, dtype=bool)
    sacrum[2:32, top + 7 :, 2:32] = True  # the class, 1 mm below, cut by the field of view
    truth[sacrum] = 7
    result = label_vertebrae(truth > 0, ONE_MM, sacrum=sacrum)
    assert [int(np.bincount(result.labels[truth == k]).argmax()) for k in range(1, 8)] == [
        20, 21, 22, 23, 24, 26, 26]
    assert result.study_flags == ()


@pytest.mark.parametrize(("cut_below", "flags"), [
    pytest.param(False, ("uncertain_level",), id="room-below: one body called sacrum"),
    pytest.param(True, (), id="cut-by-the-field-of-view"),
])
def test_a_sacrum_class_on_one_body_with_room_below_is_uncertain(
    cut_below: bool, flags: tuple[str, ...]
) -> None:
    """A fold model's mask of MyoSegmenTUM myo39: the model missed the sacrum and called the
    true L5 "sacrum"; the field of view runs on 20 mm below it, empty. A sacrum is about 10 cm
    long: a class the size of one body that the field of view does not cut objects
    (``sacrum_extent``). The same class cut by the field of view below is a sacral top."""
    truth, spans = stack(6)  # L1..L5, then the body the class covers
    rows = spans[-1][1] + (0 if cut_below else 10)
    truth = np.pad(truth, ((0, 0), (0, max(rows - truth.shape[1], 0)), (0, 0)))[:, :rows]
    sacrum = truth == 6
    result = label_vertebrae(truth > 0, AFFINE, sacrum=sacrum)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]
    assert result.study_flags == flags
    assert ("sacrum_extent" in [c["cue"] for c in result.naming()["cues"]]) is not cut_below


@pytest.mark.parametrize(("rows_below", "cols", "flags"), [
    pytest.param(10, (4, 7), ("uncertain_level",), id="one body's worth, room below"),
    pytest.param(0, (4, 7), (), id="cut-by-the-field-of-view"),
    pytest.param(10, (2, 10), (), id="a whole sacrum, room below"),
])
def test_a_sacrum_shape_without_class_the_size_of_one_body_with_room_below_is_uncertain(
    rows_below: int, cols: tuple[int, int], flags: tuple[str, ...]
) -> None:
    """A fold model's mask of MyoSegmenTUM myo49: no sacrum class, L4 and L5 found in part and
    as one long piece (0.68 of the bodies above, 17 mm above the edge); the shape called it
    sacrum and every name moved up two levels without a flag. A long lowest piece with no
    class on it is held to the class's extent test: 14 rows x 5 slices x 3 cols (210 voxels,
    0.875 of a 240-voxel body) with 20 mm of empty view below objects (``sacrum_extent``);
    cut by the field of view, or 2.3 bodies long and wide, it is a sacrum."""
    truth, spans = stack(5)
    start = spans[-1][1] + GAP
    rows = start + 14 + rows_below
    truth = np.pad(truth, ((0, 0), (0, rows - truth.shape[1]), (0, 0)))[:, :rows]
    truth[1:6, start : start + 14, cols[0] : cols[1]] = 6
    result = label_vertebrae(truth > 0, AFFINE, sacrum=np.zeros(truth.shape, bool))
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]
    assert result.study_flags == flags
    verdicts = {c["cue"]: c["verdict"] for c in result.naming()["cues"]}
    assert verdicts.pop("sacrum_extent", None) == ("disagrees" if flags else None)
    assert verdicts["sacrum_shape"] == "agrees"
    assert set(verdicts.values()) == {"agrees"}  # cut below, the fragment cue agrees too


def test_a_sacrum_strip_beside_a_partial_l5_that_outweighs_it_is_flagged() -> None:
    """A fold model's mask of MyoSegmenTUM myo32 (CV retrained 2026-12-04): the field of view
    ends just below L5; the model found L5 in part (19.2 mL, 0.55 of the bodies above) and
    called a strip at its side "sacrum" (2.6 mL, 9 mm of L5's ~46 mm width, reaching 1 mm from
    the edge). The strip's centroid lies above the rest of L5, so that rest came next in the chain
    and was named S1: every name one level up, without a flag. Here: the strip is one of five
    slices, 7 rows down to 2 rows above the edge (56 voxels); the rest of L5 is 4 slices x 4
    rows (128 voxels, 0.53 of a body), its centroid half a row below the strip's. A piece below
    the class that outweighs it says the class is no sacral top (``body_below_sacrum``)."""
    truth, spans = stack(6)  # T12, L1..L5
    top, bottom = spans[-1]
    truth = np.pad(truth, ((0, 0), (0, 1), (0, 0)))[:, : bottom + 3]
    truth[:, top:] = 0
    truth[2:6, top + 2 : bottom, 2:10] = 6  # L5 found in part
    truth[1, top : bottom + 1, 2:10] = 6  # the strip the model called sacrum
    sacrum = np.zeros(truth.shape, dtype=bool)
    sacrum[1, top : bottom + 1, 2:10] = True
    result = label_vertebrae(truth > 0, AFFINE, sacrum=sacrum)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]  # one level up
    assert result.study_flags == ("uncertain_level",)
    verdicts = {c["cue"]: c["verdict"] for c in result.naming()["cues"]}
    assert verdicts == {"sacrum_class": "agrees", "body_below_sacrum": "disagrees"}
    # the strip alone, nothing below it that outweighs it: a sacral top, named as such
    truth[2:6] = np.where(truth[2:6] == 6, 0, truth[2:6])
    result = label_vertebrae(truth > 0, AFFINE, sacrum=sacrum)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]
    assert result.study_flags == ()
    assert [c["cue"] for c in result.naming()["cues"]] == ["sacrum_class"]


def test_a_sacrum_cut_in_halves_with_the_class_on_one_is_named_without_objection() -> None:
    """MyoSegmenTUM myo35 with its mid-sagittal slice emptied, fold model: the sacrum at the
    lower edge falls into a left and a right half, the class on one (5.2 mL), the other half
    (5.9 mL) next in the chain. A piece below the class objects only at twice the class's
    size: here 3 slices x 4 rows against 2 slices x 4 rows (1.5 times; 0.4 of a body, under
    the full body's 0.6), so the class names S1 and nothing disagrees."""
    truth, spans = stack(5)  # L1..L5
    start = spans[-1][1] + GAP
    truth = np.pad(truth, ((0, 0), (0, start + 4 - truth.shape[1]), (0, 0)))
    truth[1:3, start:, 2:10] = 6  # the half the class covers
    truth[4:7, start:, 2:10] = 6  # the other half, one empty slice between
    sacrum = np.zeros(truth.shape, dtype=bool)
    sacrum[1:3, start:] = truth[1:3, start:] == 6
    result = label_vertebrae(truth > 0, AFFINE, sacrum=sacrum)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]
    assert "body_below_sacrum" not in [c["cue"] for c in result.naming()["cues"]]


def test_a_sacrum_row_under_a_partial_l5_at_the_edge_is_flagged() -> None:
    """The other way a partial L5 at the field of view's edge can be taken for S1: the model
    calls its bottom row "sacrum" and the rest, 0.52 of a body above it, "body". The sacral
    tail grows over that rest and every name moves one level up: an upper S1 that a model
    calls body measures 0.20-0.61 of the bodies above, so nothing in the masks tells the two
    apart. Not seen on real data yet (myo32's failure is the strip beside L5, above). The
    ``tail_size`` cue objects from 0.45 of a body (it did from 0.65, and this was a silent
    shift): uncertain."""
    truth, spans = stack(6)  # T12, L1..L5
    top, bottom = spans[-1]
    truth = truth[:, :bottom]
    truth[:, top:bottom] = 0
    truth[1:6, top:bottom, 3:8] = 6  # L5 found in part
    sacrum = np.zeros(truth.shape, dtype=bool)
    sacrum[:, bottom - 1] = truth[:, bottom - 1] > 0
    result = label_vertebrae(truth > 0, AFFINE, sacrum=sacrum)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26]  # one level off
    assert result.study_flags == ("uncertain_level",)
    assert [(c.name, c.verdict) for c in result.cues] == [
        ("sacrum_class", "agrees"), ("tail_size", "disagrees")]


def test_a_rib_mask_larger_than_the_bodies_is_ignored_and_said() -> None:
    """Fold models mark a third of a real water image "rib" (550-1720 mL against 160-250 mL of
    bodies): such a mask is no rib mask; the naming goes on without it and says so."""
    truth, _ = stack(7, sacrum=True)  # T11, T12, L1..L5, sacrum
    everywhere = truth == 0  # "ribs" on every voxel that is no body: both sides of each
    result = label_vertebrae(truth > 0, AFFINE, ribs=everywhere, rib_check=everywhere)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24, 26]
    # 8 mm3 voxels: bodies 7 x 240 + sacrum 640 = 2320 (18.6 mL); the rest of the 7 x 83 x 12
    # array, 4652 voxels (37.2 mL), is "rib"
    assert result.naming()["cues_ignored"] == [
        "ribs: 37 mL, larger than the bodies' 19 mL: not a rib mask",
        "rib_check: 37 mL, larger than the bodies' 19 mL: not a rib mask"]
    assert [c["cue"] for c in result.naming()["cues"]] == ["sacrum_shape"]


def test_the_rib_class_on_water_names_only_what_it_can_vouch_for() -> None:
    """No sacrum, water alone. The rib class on water finds T12 with five bodies below it and
    a rib-free L1: it names (strong), ``medium`` with nothing against it. With ribs also
    beside L1 it would leave four bodies below its T12: it may only reveal an L6, never take a
    lumbar body for T12 (a real L1 with "ribs" on water), so it only checks; the count from
    the bottom stands and the disagreement makes the naming ``low``."""
    truth, spans = stack(7)  # T11, T12, L1..L5
    ribs_t12 = _ribs_at(truth, spans, {0: "both", 1: "both"})
    result = label_vertebrae(truth > 0, AFFINE, rib_check=ribs_t12)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24]
    assert result.confidence == "medium" and result.study_flags == ("no_sacrum",)
    assert result.naming()["cues"] == [
        {"cue": "t12_ribs_water", "strength": "strong", "verdict": "agrees"}]
    ribs_l1 = _ribs_at(truth, spans, {0: "both", 1: "both", 2: "both"})
    result = label_vertebrae(truth > 0, AFFINE, rib_check=ribs_l1)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24]  # unchanged
    assert result.confidence == "low"
    assert result.study_flags == ("no_sacrum", "uncertain_level")


def test_a_missing_sagittal_slice_is_bridged_and_adds_no_voxel() -> None:
    """An empty sagittal slice between two slices of mask (signal dropout, or a model that
    found nothing there) cuts every body in two halves; the split joins them across it, and
    the instances hold only the voxels given. With the side-by-side merging alone, a lateral
    piece beside a half kept the halves of a fold model's L5 apart (myo07)."""
    truth, _ = stack(5, sacrum=True)  # bodies on slices 1-5
    truth[3] = 0
    mask = truth > 0
    bridged = bridge_missing_slices(mask, AFFINE)
    assert bridged[3].sum() == 5 * 6 * 8 + 16 * 8  # slices 2 and 4 alike: five bodies, sacrum
    instances, n = split_instances(mask, AFFINE)
    assert n == 6
    assert not instances[3].any() and (instances[mask] > 0).all()
    assert names_top_down(label_vertebrae(mask, AFFINE).labels, truth) == [20, 21, 22, 23, 24, 26]
    assert bridge_missing_slices(bridged, AFFINE) is bridged  # nothing missing: no copy


@pytest.mark.parametrize(("class_given", "flags"), [
    pytest.param(False, (), id="model-without-a-sacrum-class"),
    pytest.param(True, ("uncertain_level",), id="sacrum-class-found-nothing"),
])
def test_sacral_fragments_are_weak_when_the_sacrum_class_saw_nothing(
    class_given: bool, flags: tuple[str, ...]
) -> None:
    """A model with a sacrum class that marks no voxel did not see a sacrum: a small piece cut
    by the field of view below the last body is then weak evidence of one (a 48-epoch fold-3
    model on MyoSegmenTUM myo49: L4 and L5 barely segmented, the piece left of L4 taken for
    sacrum, every name two levels off without a flag). Same names, flagged."""
    start = 2 + 5 * (H + GAP)
    truth, _ = stack(5, rows=start + 3)
    mask = truth > 0
    mask[2:5, start:, 3:8] = True  # sacral top cut by the FOV (15 % of a body)
    sacrum = np.zeros(mask.shape, dtype=bool) if class_given else None
    result = label_vertebrae(mask, AFFINE, sacrum=sacrum)
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24]
    assert result.study_flags == flags
    assert [(c.name, c.strength) for c in result.cues] == [
        ("sacral_fragments", "weak" if class_given else "strong")]


def _padded(truth: np.ndarray, pad: int) -> np.ndarray:
    """``truth`` with ``pad`` empty sagittal slices on each side (room for ribs off the body)."""
    return np.pad(truth, ((pad, pad), (0, 0), (0, 0)))


def test_ribs_drawn_short_of_t12_still_mark_it() -> None:
    """A model may draw T12's ribs stopping short of the body: 30 voxels (0.24 mL) a side, 12-14
    mm off it, miss the 8 mm contact but lie within the 15 mm reach at over RIB_SHORT_ML; with
    only T11's ribs found, T11 would be taken for T12 and six bodies would look lumbar (an L6
    declared: every name one level off, no uncertainty)."""
    truth = _padded(stack(7, sacrum=True)[0], 7)  # T11, T12, L1..L5, sacrum; body slices 8-12
    spans = stack(7, sacrum=True)[1]
    ribs = np.zeros(truth.shape, dtype=bool)
    ribs[6:8, spans[0][0] + 1 : spans[0][0] + 4, 6:9] = True  # T11: touching, both sides
    ribs[13:15, spans[0][0] + 1 : spans[0][0] + 4, 6:9] = True
    t12 = spans[1][0]
    ribs[1:3, t12 : t12 + 5, 3:6] = True  # T12: slices 1-2 and 18-19, 12-14 mm off, 30 voxels
    ribs[18:20, t12 : t12 + 5, 3:6] = True
    result = label_vertebrae(truth > 0, AFFINE, ribs=ribs)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24, 26]
    assert result.study_flags == () and result.confidence == "high"
    ribs[1:3, t12 : t12 + 5, 5] = False  # 20 voxels a side (0.16 mL): no T12 rib any more
    ribs[18:20, t12 : t12 + 5, 5] = False
    shifted = label_vertebrae(truth > 0, AFFINE, ribs=ribs)
    assert names_top_down(shifted.labels, truth) == [19, 20, 21, 22, 23, 24, 25, 26]
    assert shifted.study_flags == ("transitional",)


def test_rib_free_counts_the_poorer_side_within_15_mm() -> None:
    """:func:`rib_free`: less than MIN_CONTACT_ML (0.05 mL, 6.25 voxels of 2 mm) on either side
    within 15 mm."""
    from vertebrafat.levels.ribs import rib_free

    truth = _padded(stack(1)[0], 7)  # one body on slices 8-12, rows 2-7, cols 2-9
    inst = truth.astype(np.int32)
    centre_x = np.array([np.argwhere(truth > 0)[:, 0].mean() * AFFINE[0, 0] + AFFINE[0, 3]])
    ribs = np.zeros(truth.shape, dtype=bool)
    ribs[1, 2:9, 4] = True  # 7 voxels at 14 mm on the left
    ribs[18, 2:9, 4] = True  # and on the right
    assert not rib_free(ribs, inst, 0, centre_x, AFFINE)
    ribs[18, 2:4, 4] = False  # 5 voxels (0.04 mL) on the right
    assert rib_free(ribs, inst, 0, centre_x, AFFINE)
    ribs[18, 2:4, 4] = True
    ribs[0, 2:9, 4], ribs[1] = True, False  # the left rib moved to 16 mm: out of reach
    assert rib_free(ribs, inst, 0, centre_x, AFFINE)


def test_the_rib_class_on_water_reveals_an_l6_with_the_sacrum_in_view() -> None:
    """Water alone, six lumbar bodies: the rib class on water finds T12 (L1 below it bears no
    rib) and the sacrum bounds the count at six: an L6 on two concordant cues, not uncertain.
    Before, as a weak check, it only flagged the count from the sacrum (every name one level
    off)."""
    truth, spans = stack(8, sacrum=True)  # T11, T12, L1..L6, sacrum
    ribs = _ribs_at(truth, spans, {0: "both", 1: "both"})
    result = label_vertebrae(truth > 0, AFFINE, rib_check=ribs)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24, 25, 26]
    assert result.study_flags == ("transitional",)
    assert result.naming()["cues"] == [
        {"cue": "sacrum_shape", "strength": "strong", "verdict": "agrees"},
        {"cue": "t12_ribs_water", "strength": "strong", "verdict": "agrees"}]


def test_a_sacrum_the_size_of_one_body_four_below_t12_is_l5() -> None:
    """The model calls a lumbar body cut by the field of view's lower edge "sacrum" (held-out
    phantom seed 32 subjects 3 and 5, lumbar-only view): four bodies between the rib-bearing T12
    and that "sacrum" of one body's size. The ribs name it L5; the sacrum class disagrees, so
    the naming is uncertain. Above a whole sacrum (sixteen rows, 2.7 bodies) the ribs' count of
    four is not used (ribs may only reveal an L6): the sacrum names, the ribs disagree."""
    truth, spans = stack(7, rows=2 + 7 * (H + GAP) - GAP)  # T11, T12, L1..L5; L5 on the edge
    ribs = _ribs_at(truth, spans, {0: "both", 1: "both"})
    result = label_vertebrae(truth > 0, AFFINE, sacrum=truth == 7, ribs=ribs)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24]
    assert result.study_flags == ("uncertain_level",) and result.naming()["anchor"] == "t12"
    verdicts = {c.name: c.verdict for c in result.cues}
    assert verdicts == {"sacrum_class": "disagrees", "t12_ribs": "agrees"}
    whole, whole_spans = stack(6, sacrum=True)  # T11, T12, L1..L4, sacrum
    ribs = _ribs_at(whole, whole_spans, {0: "both", 1: "both"})
    four = label_vertebrae(whole > 0, AFFINE, sacrum=whole == 7, ribs=ribs)
    assert names_top_down(four.labels, whole) == [19, 20, 21, 22, 23, 24, 26]
    assert four.study_flags == ("uncertain_level",)


def test_the_ribs_that_name_a_split_l5_agree_with_the_names() -> None:
    """Held-out phantom seed 42 subject 6, lumbar-only view: the model calls the upper part of
    the cut L5 "sacrum" and the lower part a body, two pieces. The ribs name both L5; the
    junction the names imply lies below the first of them, so the rib cue agrees (before, the
    slot after the lower piece was taken: both cues read "disagrees" in ``bmf.json``)."""
    truth, spans = stack(7, rows=2 + 7 * (H + GAP) - GAP)  # T11, T12, L1..L5; L5 on the edge
    top = spans[6][0]
    truth[:, top + 3] = 0  # L5 in two pieces: three rows with the class, two rows below
    sacrum = np.zeros(truth.shape, dtype=bool)
    sacrum[:, top : top + 3] = truth[:, top : top + 3] > 0
    ribs = _ribs_at(truth, spans, {0: "both", 1: "both"})
    result = label_vertebrae(truth > 0, AFFINE, sacrum=sacrum, ribs=ribs)
    assert names_top_down(result.labels, truth) == [18, 19, 20, 21, 22, 23, 24]
    assert set(np.unique(result.labels[truth == 7])) == {24}  # both pieces
    assert result.study_flags == ("uncertain_level",) and result.anchor == "t12"
    assert [(c.name, c.junction, c.verdict) for c in result.cues] == [
        ("sacrum_class", 6, "disagrees"), ("t12_ribs", 7, "agrees")]


def test_two_strong_cues_outvote_the_sacrum_class() -> None:
    """The model calls L5 "sacrum" and the true sacrum body (held-out phantom seed 3 subject 6,
    water alone): the sacrum-shaped body below and the T12 cue both put S1 one level lower.
    Two strong cues against one name the spine; they still disagree, so it is uncertain."""
    truth, spans = stack(6, sacrum=True)  # T12, L1..L5, sacrum
    ribs = _ribs_at(truth, spans, {0: "both"})
    result = label_vertebrae(truth > 0, AFFINE, sacrum=truth == 6, ribs=ribs)
    assert names_top_down(result.labels, truth) == [19, 20, 21, 22, 23, 24, 26]
    assert result.study_flags == ("uncertain_level",) and result.naming()["anchor"] == "cues"
    verdicts = {c.name: c.verdict for c in result.cues}
    assert verdicts == {"sacrum_class": "disagrees", "body_below_sacrum": "disagrees",
                        "sacrum_extent": "disagrees", "sacrum_shape": "agrees",
                        "t12_ribs": "agrees"}
    alone = label_vertebrae(truth > 0, AFFINE, sacrum=truth == 6)  # one strong cue each way
    assert names_top_down(alone.labels, truth) == [20, 21, 22, 23, 24, 26, 26]


def test_a_sacrum_class_that_ends_inside_l5_objects() -> None:
    """A fold model of MyoSegmenTUM myo39 (CV of 2026-12-04 with the dark-disc augmentation)
    called most of L5, the L5/S1 disc and S1 "sacrum" and joined the top of L5 to L4 across
    the disc (1.38 times the body above: not two fused bodies): every name one level off, and
    only the sacrum class as a cue. The class, a body's worth and smaller than the piece above
    it, then lies against that piece, where a sacral top has the L5/S1 disc above it:
    ``sacrum_contact`` objects. The same class from the top of S1 down does not."""
    truth, spans = stack(6, sacrum=True)  # T12, L1..L5 above a sacrum (7) ...
    truth = truth[:, : spans[6][0] + 1]  # ... the field of view ending in its first row
    l4_bottom, l5_top = spans[4][1], spans[5][0]
    sacrum = np.zeros(truth.shape, dtype=bool)
    sacrum[1:6, l5_top + 2 :, 2:10] = True  # L5 less its top two rows, the disc, S1's first row
    body = (truth > 0) | sacrum
    body[2:5, l4_bottom:l5_top, 2:10] = True  # the L4/L5 disc bridged in three slices
    result = label_vertebrae(body, AFFINE, sacrum=sacrum)
    verdicts = {c.name: c.verdict for c in result.cues}
    assert verdicts == {"sacrum_class": "agrees", "sacrum_contact": "disagrees"}
    assert result.study_flags == ("uncertain_level",)
    assert result.confidence == "low"
    assert names_top_down(result.labels, truth) == [20, 21, 22, 23, 24, 26, 26]  # one off
    at_s1 = np.zeros(truth.shape, dtype=bool)
    at_s1[1:6, spans[6][0] :, 2:10] = True
    clean = label_vertebrae(truth > 0, AFFINE, sacrum=at_s1)
    assert [c.name for c in clean.cues] == ["sacrum_class"]
    assert clean.study_flags == ()
    assert names_top_down(clean.labels, truth) == [19, 20, 21, 22, 23, 24, 26]
