"""One study end to end with a known segmentation: labels, table, QC, shape checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vertebrafat.core.errors import GeometryError
from vertebrafat.core.image import StudyMeta, WaterFatImage
from vertebrafat.workflows.study import analyse_study, mask_segmenter

AFFINE = np.array(
    [[-2.0, 0, 0, 0], [0, 0, -2.0, 0], [0, -2.0, 0, 0], [0, 0, 0, 1]], dtype=np.float64
)


def spine_study(*, with_ff: bool = True) -> tuple[WaterFatImage, np.ndarray]:
    """Five bodies (L1..L5 truth 20..24) whose FF is 20, 25, 30, 35, 40 % inside, 90 % cortex."""
    truth = np.zeros((7, 60, 14), dtype=np.uint8)
    ff = np.full(truth.shape, 5.0, dtype=np.float32)
    for k in range(5):
        rows = slice(3 + 11 * k, 3 + 11 * k + 8)
        truth[1:6, rows, 2:12] = 20 + k
        ff[1:6, rows, 2:12] = 90.0
        ff[1:6, rows.start + 1 : rows.stop - 1, 3:11] = 20.0 + 5 * k
    meta = StudyMeta(source="synthetic", format="nifti", subject="P007", scan="2")
    image = WaterFatImage(water=np.ones(truth.shape, np.float32), affine=AFFINE,
                          ff=ff if with_ff else None, meta=meta)
    return image, truth


def test_truth_segmenter_gives_truth_labels_and_exact_bmf() -> None:
    image, truth = spine_study()
    result = analyse_study(image, mask_segmenter(truth > 0), erosion_mm=2.0, slices="mid3")
    assert np.array_equal(result.labelling.labels, truth)
    assert [r.level for r in result.table] == ["L1", "L2", "L3", "L4", "L5"]
    assert [r.ff_mean for r in result.table] == [20.0, 25.0, 30.0, 35.0, 40.0]
    assert {r.n_slices for r in result.table} == {3}
    assert {r.n_voxels for r in result.table} == {3 * 6 * 8}
    assert {(r.subject, r.scan) for r in result.table} == {("P007", "2")}
    assert result.table[0].flags == ("no_sacrum", "uncertain_level")
    assert result.probability.dtype == np.float32
    assert result.qc.dtype == np.uint8 and result.qc.shape[2] == 3


def test_without_ff_every_body_is_listed_with_nan_and_no_ff() -> None:
    image, truth = spine_study(with_ff=False)
    result = analyse_study(image, mask_segmenter(truth > 0))
    assert len(result.table) == 5
    assert all(math.isnan(r.ff_mean) and r.flags[-1] == "no_ff" for r in result.table)
    assert result.table[2].volume_ml == pytest.approx(5 * 8 * 10 * 8 / 1000)


def test_segmentation_of_the_wrong_shape_is_refused() -> None:
    image, truth = spine_study()
    with pytest.raises(GeometryError, match="synthetic"):
        analyse_study(image, mask_segmenter(truth[:, :50] > 0))


MYO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "myosegmentum"


@pytest.mark.slow
def test_cli_segment_on_a_myosegmentum_nifti_writes_every_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = MYO / "myo05"
    if not (study / "water.nii.gz").is_file():
        pytest.skip(f"MyoSegmenTUM data not found at {MYO}")
    pytest.importorskip("vertebrafat.io.study", reason="io.study (load_study) not written yet")
    from vertebrafat.io.model import MODELS_DIR

    if not any(MODELS_DIR.glob("*.onnx")):
        pytest.skip(f"no shipped model in {MODELS_DIR}")
    from vertebrafat.cli import main

    out = tmp_path / "out"
    code = main(["segment", str(study / "water.nii.gz"), str(out), "--slices", "mid5", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"L1", "L2", "L3", "L4", "L5"} <= {r["level"] for r in rows}
    import nibabel as nib

    labels = np.asarray(nib.load(str(out / "labels.nii.gz")).dataobj)
    truth = np.asarray(nib.load(str(study / "labels.nii.gz")).dataobj)
    named = [int(np.bincount(labels[truth == k]).argmax()) for k in range(20, 25)]
    assert named == [20, 21, 22, 23, 24]
    assert {p.name for p in out.iterdir()} == {
        "bmf.csv", "bmf.json", "labels.ctbl", "labels.itksnap.txt", "labels.nii.gz",
        "probability.nii.gz", "qc.png",
    }
