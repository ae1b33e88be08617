"""DICOM study reading for every vendor layout, written by io.dicom.write (io/dicom_*.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from conftest import reversed_slices
from vertebrafat.cli import main
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dicom.roles import series_role
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.workflows.loading import load_study

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
EXPECTED_ROLES = {
    "ge": {"water", "fat", "ff", "r2star"},
    "siemens": {"water", "fat", "ff", "r2star", "in_phase", "out_phase"},
    "philips": {"water", "fat", "ff", "r2star"},
}


def _write(image: WaterFatImage, folder: Path, vendor: str, **kw: object) -> Path:
    save_dicom_study(image, folder, vendor=vendor, patient_name="PHANTOM^T01",  # type: ignore[arg-type]
                     patient_id="T01", uid_seed=11, **kw)  # type: ignore[arg-type]
    return folder


def _expected_order(affine: np.ndarray) -> bool:
    """True when the reader keeps the slice order: slices ascend along row x col normal."""
    lps = LPS @ affine
    normal = np.cross(lps[:3, 2], lps[:3, 1])
    return float(np.dot(normal, lps[:3, 0])) > 0


@pytest.mark.parametrize("vendor", ["ge", "siemens", "philips"])
@pytest.mark.parametrize("reverse", [False, True], ids=["ascending", "reversed-slices"])
def test_vendor_round_trip(
    tmp_path: Path, tiny_image: WaterFatImage, vendor: str, reverse: bool
) -> None:
    image = reversed_slices(tiny_image) if reverse else tiny_image
    _write(image, tmp_path, vendor, shuffle_names=True)
    back = load_study(tmp_path)
    roles = {s.role for s in back.meta.series}
    assert roles == EXPECTED_ROLES[vendor]
    assert back.meta.vendor == vendor
    keep = _expected_order(image.affine)
    assert keep is not reverse
    order = slice(None) if keep else slice(None, None, -1)
    expected_affine = image.affine.copy()
    if not keep:
        expected_affine[:, 3] = image.affine @ [image.shape[0] - 1, 0, 0, 1]
        expected_affine[:, 0] = -image.affine[:, 0]
    np.testing.assert_allclose(back.affine, expected_affine, atol=1e-5)
    assert back.ff is not None and back.r2star is not None
    np.testing.assert_allclose(back.ff, image.ff[order], atol=1e-4)  # type: ignore[index]
    np.testing.assert_allclose(back.r2star, image.r2star[order], atol=1e-4)  # type: ignore[index]
    top = max(float(image.water.max()), float(image.fat.max()))  # type: ignore[union-attr]
    # GE/Siemens: integers scaled to 4000 at the water/fat maximum; Philips: the same integers
    # times RescaleSlope = top / 4000, so the original values come back to within one step.
    stored = np.round(image.water.astype(np.float64) / (top / 4000))
    slope = top / 4000 if vendor == "philips" else 1.0
    np.testing.assert_allclose(back.water, (stored * slope)[order], rtol=1e-6)
    assert back.meta.ff_scale == (100.0 if vendor == "philips" else 1000.0)
    assert back.meta.field_strength_t == 3.0


def test_names_and_instance_numbers_do_not_matter(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    _write(tiny_image, tmp_path / "a", "ge")
    _write(tiny_image, tmp_path / "b", "ge", shuffle_names=True)
    for i, f in enumerate(sorted((tmp_path / "b").rglob("*.dcm"))):
        f.rename(f.parent.parent / f"zz{(i * 7919) % 1000:03d}")
    a, b = load_study(tmp_path / "a"), load_study(tmp_path / "b")
    np.testing.assert_array_equal(a.water, b.water)
    np.testing.assert_array_equal(a.affine, b.affine)


def test_same_seed_same_bytes(tmp_path: Path, tiny_image: WaterFatImage) -> None:
    digests = []
    for name in ("a", "b"):
        _write(tiny_image, tmp_path / name, "siemens")
        blob = b"".join(p.read_bytes() for p in sorted((tmp_path / name).rglob("*.dcm")))
        digests.append(hashlib.sha256(blob).hexdigest())
    assert digests[0] == digests[1]


@pytest.mark.parametrize(
    ("image_type", "description", "role"),
    [
        pytest.param(["ORIGINAL", "PRIMARY", "OTHER"], "WATER: Sag IDEAL", "water", id="ge-water"),
        pytest.param(["ORIGINAL", "PRIMARY", "OTHER"], "FatFrac: Sag IDEAL", "ff", id="ge-ff"),
        pytest.param(["ORIGINAL", "PRIMARY", "OTHER"], "FAT: Sag IDEAL", "fat", id="ge-fat"),
        pytest.param(["DERIVED", "PRIMARY", "OTHER"], "R2* (Hz): Sag", "r2star", id="ge-r2"),
        pytest.param(["DERIVED", "PRIMARY", "DIXON", "W"], "x", "water", id="siemens-type"),
        pytest.param(["ORIGINAL", "PRIMARY", "M"], "t1_vibe_dixon_opp", "out_phase",
                     id="siemens-desc"),
        pytest.param(["DERIVED", "PRIMARY", "T2_STAR", "T2_STAR"], "mDIXON", "t2star",
                     id="philips-t2star"),
        pytest.param(["ORIGINAL", "PRIMARY", "M"], "Sag T2 FSE", None, id="unrelated"),
    ],
)
def test_series_role(image_type: list[str], description: str, role: str | None) -> None:
    assert series_role(image_type, description) == role


@pytest.mark.parametrize("vendor", ["ge", "siemens", "philips"])
def test_info_prints_roles(
    tmp_path: Path, tiny_image: WaterFatImage, vendor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tiny_image, tmp_path, vendor)
    assert main(["info", str(tmp_path), "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert {s["role"] for s in data["series"]} == EXPECTED_ROLES[vendor]
    assert data["vendor"] == vendor
    assert data["orientation"] == "RIP"  # slices stacked right-ward, rows down, cols back
    assert data["shape"] == [6, 32, 32]
