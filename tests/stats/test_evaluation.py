"""stats/evaluation.py and the evaluate verb: exact per-level results, probability maps, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vertebrafat.cli import main
from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.io.nifti import save_labels, save_volume
from vertebrafat.stats.evaluation import evaluate_pair, prediction_kind, summarise
from vertebrafat.workflows.evaluate import pair_maps

# axis 0 = sagittal slices (3 mm, L), axis 1 = rows (1 mm, I), axis 2 = cols (1 mm, P)
AFFINE = np.array([[-3.0, 0, 0, 0], [0, 0, -1.0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])
SPACING = (3.0, 1.0, 1.0)


def spine() -> np.ndarray:
    """L1 rows 2-5 and L2 rows 8-11, slices 1-4, cols 5-9: 80 voxels each."""
    ref = np.zeros((6, 20, 20), dtype=np.uint8)
    ref[1:5, 2:6, 5:10] = 20
    ref[1:5, 8:12, 5:10] = 21
    return ref


def test_label_map_prediction_per_level() -> None:
    ref = spine()
    pred = ref.copy()
    pred[1:5, 6, 5:10] = 21  # 20 false-positive L2 voxels on row 6
    out = summarise({"s": evaluate_pair(ref, pred, spacing_mm=SPACING)})
    assert (out["tp"], out["fp"], out["fn"]) == (160, 20, 0)
    assert out["dice"] == pytest.approx(320 / 340)
    assert out["per_level"]["L1"]["dice"] == 1.0
    assert out["per_level"]["L2"]["dice"] == pytest.approx(160 / 180)
    assert out["per_level"]["L2"]["hd95_mm"] == pytest.approx(2.0)  # row 6 vs row 8
    assert out["per_slice"]["dice"] == {"mean": pytest.approx(80 / 85), "sd": 0.0,
                                        "n_slices": 4}
    assert out["roc_auc"] is None and out["per_subject"]["s"]["level_rule"] == "labels"


def test_probability_prediction_uses_nearest_level_regions_and_roc() -> None:
    ref = spine()
    prob = np.where(ref > 0, 0.9, 0.1)
    prob[1:5, 6, 5:10] = 0.7  # row 6 is 1 mm from L1 and 2 mm from L2 -> L1's region
    prob[0, 0, 0] = 0.5  # threshold is >= 0.5
    out = summarise({"s": evaluate_pair(ref, prob, spacing_mm=SPACING, roc_bins=None)},
                    bins=None)
    assert (out["tp"], out["fp"], out["fn"]) == (160, 21, 0)
    assert out["per_level"]["L1"]["fp"] == 21 and out["per_level"]["L2"]["fp"] == 0
    assert out["per_level"]["L1"]["tn"] + out["per_level"]["L2"]["tn"] == out["tn"]
    # positives all score 0.9; negatives: 21 of 2240 score 0.5-0.7, the rest 0.1 -> AUC 1
    assert out["roc_auc"] == pytest.approx(1.0)
    assert out["pr_auc"] == pytest.approx(1.0)
    assert out["per_subject"]["s"]["level_rule"] == "nearest-level"


def test_the_sacrum_is_background_for_pixel_roc_and_body_metrics() -> None:
    """A sacrum (26) in the reference under a low body probability: the AUC stays 1 and the
    binary metrics agree with it (the reference study's foreground: vertebral bodies)."""
    ref = spine()
    ref[1:5, 14:18, 5:10] = 26  # 80 sacrum voxels below L2
    prob = np.where((ref > 0) & (ref != 26), 0.9, 0.1)
    labels = np.where(prob >= 0.5, ref, 0).astype(np.uint8)
    labels[1:5, 14:18, 5:10] = 26  # the labeller names the sacrum too
    for pred, probability in ((prob, None), (labels, prob)):
        out = summarise({"s": evaluate_pair(ref, pred, spacing_mm=SPACING,
                                            probability=probability, roc_bins=None)}, bins=None)
        assert (out["tp"], out["fp"], out["fn"]) == (160, 0, 0)
        assert out["roc_auc"] == pytest.approx(1.0)
        assert out["sensitivity"] == 1.0 and out["specificity"] == 1.0
    assert "S1" not in summarise({"s": evaluate_pair(ref, prob, spacing_mm=SPACING)})[
        "per_level"]
    by_label = summarise({"s": evaluate_pair(ref, labels, spacing_mm=SPACING, probability=prob)})
    assert by_label["per_level"]["S1"]["dice"] == 1.0
    assert by_label["per_level"]["S1"]["roc_auc"] is None


def test_slice_selection_restricts_every_count() -> None:
    ref = spine()
    out = summarise({"s": evaluate_pair(ref, ref, spacing_mm=SPACING, slices="mid2")})
    assert (out["tp"], out["tn"]) == (80, 2 * 400 - 80)  # slices 2 and 3 only
    empty = summarise({"s": evaluate_pair(np.zeros((2, 3, 3), np.uint8),
                                          np.zeros((2, 3, 3), np.uint8), spacing_mm=SPACING)})
    assert empty["dice"] == 1.0 and empty["sensitivity"] is None and empty["hd95_mm"] == 0.0


@pytest.mark.parametrize(
    ("array", "kind"),
    [pytest.param(np.array([0, 20, 24], np.uint8), "labels", id="labels"),
     pytest.param(np.array([0, 1], np.uint8), "binary", id="binary"),
     pytest.param(np.array([0.0, 1.0]), "binary", id="binary-float"),
     pytest.param(np.array([0.2, 0.7]), "probability", id="probability")],
)
def test_prediction_kind(array: np.ndarray, kind: str) -> None:
    assert prediction_kind(array) == kind


def test_probability_out_of_range_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        prediction_kind(np.array([0.5, 1.5]))


def write_cohort(root: Path) -> None:
    ref = spine()
    for name, shift in (("sub01", 0), ("sub02", 1), ("sub03", 0)):
        save_labels(ref, AFFINE, root / "ref" / name / "labels.nii.gz")
        if name != "sub03":
            pred = np.roll(ref, shift, axis=1)
            save_labels(pred, AFFINE, root / "pred" / name / "labels.nii.gz")
            save_volume(np.where(pred > 0, 0.8, 0.2).astype(np.float32), AFFINE,
                        root / "pred" / name / "probability.nii.gz")
    save_labels(ref, AFFINE, root / "pred" / "sub09" / "labels.nii.gz")
    (root / "ref" / "sub01" / "annotated_slices.json").write_text("[2, 3]")


def test_pair_maps_reports_unpaired_names(tmp_path: Path) -> None:
    write_cohort(tmp_path)
    pairing = pair_maps(tmp_path / "ref", tmp_path / "pred")
    assert [p.name for p in pairing.pairs] == ["sub01", "sub02"]
    assert pairing.unpaired_reference == ("sub03",) and pairing.unpaired_prediction == ("sub09",)
    assert pairing.pairs[0].probability == tmp_path / "pred" / "sub01" / "probability.nii.gz"
    assert pairing.pairs[0].annotated is not None and pairing.pairs[1].annotated is None


def test_cli_evaluate_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cohort(tmp_path)
    code = main(["evaluate", "--reference", str(tmp_path / "ref"), "--prediction",
                 str(tmp_path / "pred"), "--json", "--plots", str(tmp_path / "figs")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("sensitivity", "specificity", "precision", "accuracy", "f1", "dice", "iou",
                "kappa", "hd95_mm", "assd_mm", "roc_auc", "roc_auc_ci", "pr_auc", "per_level",
                "per_subject"):
        assert key in out
    assert out["per_subject"]["sub01"]["dice"] == 1.0
    # sub02 shifted 1 row: 3 of 4 rows (60 of 80 voxels) overlap -> Dice 0.75
    assert out["per_subject"]["sub02"]["per_level"]["L1"]["dice"] == pytest.approx(0.75)
    assert out["unpaired"] == {"reference": ["sub03"], "prediction": ["sub09"]}
    assert (tmp_path / "figs" / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "figs" / "pr.png").is_file()
    assert main(["evaluate", "--reference", str(tmp_path / "ref"), "--prediction",
                 str(tmp_path / "pred"), "--slices", "annotated", "--json"]) == 0
    ann = json.loads(capsys.readouterr().out)
    assert ann["per_subject"]["sub01"]["tp"] == 80  # annotated slices 2 and 3 only


def test_cli_evaluate_two_raters_in_the_same_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--reference-name / --prediction-name pick files inside one cohort's study folders;
    the automatic probability.nii.gz is not attached to a rater's map."""
    ref = spine()
    for name in ("sub01", "sub02"):
        save_labels(ref, AFFINE, tmp_path / name / "rater_a.nii.gz")
        save_labels(np.roll(ref, 1, axis=1), AFFINE, tmp_path / name / "rater_b.nii.gz")
        save_volume(np.full(ref.shape, 0.3, np.float32), AFFINE,
                    tmp_path / name / "probability.nii.gz")
    assert main(["evaluate", "--reference", str(tmp_path), "--prediction", str(tmp_path),
                 "--reference-name", "rater_a.nii.gz", "--prediction-name", "rater_b.nii.gz",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_subjects"] == 2 and out["roc_auc"] is None
    assert out["dice"] == pytest.approx(0.75)  # 3 of 4 rows overlap in both levels
    assert (out["tp"], out["fp"], out["fn"]) == (2 * 120, 2 * 40, 2 * 40)
    assert main(["evaluate", "--reference", str(tmp_path), "--prediction", str(tmp_path),
                 "--reference-name", "rater_a.nii.gz", "--prediction-name", "nope.nii.gz"]) == 2
    assert "no study folders (with nope.nii.gz)" in capsys.readouterr().err


def test_cli_evaluate_grid_mismatch_is_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    save_labels(spine(), AFFINE, tmp_path / "r.nii.gz")
    save_labels(spine()[:5], AFFINE, tmp_path / "p.nii.gz")
    assert main(["evaluate", "--reference", str(tmp_path / "r.nii.gz"), "--prediction",
                 str(tmp_path / "p.nii.gz")]) == 2
    assert "p.nii.gz" in capsys.readouterr().err
    with pytest.raises(GeometryError):
        from vertebrafat.workflows.evaluate import load_pair

        load_pair(pair_maps(tmp_path / "r.nii.gz", tmp_path / "p.nii.gz").pairs[0])


MYO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "myosegmentum"


@pytest.mark.slow
@pytest.mark.skipif(not (MYO / "myo01" / "labels.nii.gz").is_file(),
                    reason="../shared/data/myosegmentum not present")
def test_real_labels_against_themselves_shifted(tmp_path: Path) -> None:
    from vertebrafat.io.nifti import read_nifti

    ref, _ = read_nifti(MYO / "myo01" / "labels.nii.gz", as_float32=False)
    ref = ref.astype(np.uint8)
    out = summarise({"myo01": evaluate_pair(ref, ref, spacing_mm=(1.0, 1.0, 1.0))})
    assert out["dice"] == 1.0 and out["hd95_mm"] == 0.0
    assert list(out["per_level"]) == ["L1", "L2", "L3", "L4", "L5"]
    assert not math.isnan(out["kappa"])


def test_cli_evaluate_refuses_nan_in_a_probability_map(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prob = np.where(spine() > 0, 0.9, 0.1).astype(np.float32)
    prob[0, :3, 0] = np.nan
    save_labels(spine(), AFFINE, tmp_path / "r.nii.gz")
    save_volume(prob, AFFINE, tmp_path / "p.nii.gz")
    assert main(["evaluate", "--reference", str(tmp_path / "r.nii.gz"), "--prediction",
                 str(tmp_path / "p.nii.gz")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'p.nii.gz'}: 3 voxels are NaN or infinite")
