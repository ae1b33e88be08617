"""Fuzzed NIfTI reading (issue 15): every mutated phantom water.nii.gz ends in a result or one line.

A small phantom water image is written once per module (qform and sform code 1, as the phantom
writes it); each case rewrites its header fields in place (nibabel packs the header, the data
bytes stay), replaces its array (4D, 2D, 5D, complex, RGB) or corrupts the file, and checks the
one property of the reader: ``load_study`` returns a :class:`WaterFatImage` with finite values
and an invertible affine, or raises a :class:`VertebrafatError` whose message is one line
naming the file.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tempfile
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_outcome
from vertebrafat.cli import main
from vertebrafat.core.errors import GeometryError, InputError, VertebrafatError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.nifti import save_volume
from vertebrafat.phantom import generate_subject

NAN, INF = float("nan"), float("inf")
Mutation = Callable[[Path], None]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``water.nii.gz`` of phantom P001 (seed 3): 5 central slices, every 2nd row and column of
    the central 128 x 128 (2.5 mm in-plane voxels: still thinner than the 4.4 mm slices, so a
    sagittal acquisition)."""
    image = generate_subject(seed=3, index=0).image
    k0 = image.shape[0] // 2 - 2
    shrink = np.diag([1.0, 2.0, 2.0, 1.0])
    shrink[:3, 3] = (k0, 80, 80)
    path = tmp_path_factory.mktemp("phantom") / "water.nii.gz"
    save_volume(np.round(image.water[k0:k0 + 5, 80:208:2, 80:208:2]).astype(np.int16),
                image.affine @ shrink, path)
    return path


@pytest.fixture
def water(phantom: Path, tmp_path: Path) -> Path:
    """A fresh copy of the phantom water image in a study folder of its own."""
    (tmp_path / "study").mkdir()
    return Path(shutil.copy(phantom, tmp_path / "study" / "water.nii.gz"))


# -- mutations: each changes water.nii.gz in place --------------------------------------------


def header(path: Path, **fields: object) -> None:
    """Set header ``fields`` to the given values (invalid ones included), data bytes kept."""
    raw = gzip.decompress(path.read_bytes())
    hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(raw), check=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, value in fields.items():
            hdr[name] = value
    path.write_bytes(gzip.compress(hdr.binaryblock + raw[348:]))


def array(path: Path, make: Callable[[np.ndarray], np.ndarray]) -> None:
    """Replace the array by ``make(array)``, same affine (written by nibabel)."""
    img = nib.load(path)
    data = make(np.asarray(img.dataobj))
    nib.save(nib.Nifti1Image(data, img.affine, dtype=data.dtype), path)


def truncate_data(path: Path, keep: float) -> None:
    """Keep the fraction ``keep`` of the uncompressed file, compressed again (a valid gzip)."""
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[: int(len(raw) * keep)]))


def cut_gzip(path: Path, keep: float) -> None:
    """Keep the fraction ``keep`` of the gzip file (a broken stream)."""
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


def flip_byte(path: Path, from_end: int) -> None:
    """Invert one byte of the gzip file, ``from_end`` bytes before its end."""
    raw = bytearray(path.read_bytes())
    raw[max(0, len(raw) - from_end)] ^= 0xFF
    path.write_bytes(bytes(raw))


def rgb(data: np.ndarray) -> np.ndarray:
    out = np.zeros(data.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    out["G"] = np.clip(data // 16, 0, 255)
    return out


# -- the property -----------------------------------------------------------------------------


CASES = [  # mutation, error class, phrase after "water.nii.gz: "
    pytest.param(partial(header, sform_code=0, pixdim=[-1, 0, 0, 0, 1, 1, 1, 1]),
                 GeometryError, "pixdim [0.0, 0.0, 0.0] not positive; the qform cannot size",
                 id="qform-zero-pixdim"),
    pytest.param(partial(header, sform_code=0, pixdim=[-1, -4, 9, 9, 1, 1, 1, 1]),
                 GeometryError, "pixdim [-4.0, 9.0, 9.0] not positive", id="qform-negative-pixdim"),
    pytest.param(partial(header, sform_code=0, pixdim=[-1, NAN, 9, 9, 1, 1, 1, 1]),
                 GeometryError, "pixdim [nan, 9.0, 9.0] not positive", id="qform-nan-pixdim"),
    pytest.param(partial(header, sform_code=0, qform_code=0), InputError,
                 "no orientation in the header (sform_code 0, qform_code 0)", id="codes-0"),
    pytest.param(partial(header, sform_code=9, qform_code=0), InputError,
                 "no orientation in the header (sform_code 9, qform_code 0)", id="code-invalid"),
    pytest.param(partial(header, srow_x=[NAN, 0, 0, 0]), GeometryError,
                 "the affine has NaN or infinite entries", id="sform-nan"),
    pytest.param(partial(header, sform_code=0, qoffset_y=INF), GeometryError,
                 "the affine has NaN or infinite entries", id="qform-inf-offset"),
    pytest.param(partial(header, srow_y=[0, 0, 0, 5]), GeometryError,
                 "the affine is singular", id="sform-singular"),
    pytest.param(partial(array, make=lambda a: np.stack([a] * 3, axis=-1)), InputError,
                 "4D with 3 volumes; pass one volume", id="4d-three-volumes"),
    pytest.param(partial(array, make=lambda a: a[0]), InputError,
                 "expected a 3D volume, got shape (64, 64) (2D image?)", id="2d"),
    pytest.param(partial(array, make=lambda a: np.stack([a[..., None]] * 2, axis=-1)),
                 InputError, "expected a 3D volume, got shape (5, 64, 64, 1, 2)", id="5d"),
    pytest.param(partial(array, make=lambda a: a.astype(np.complex64) * (1 + 1j)), InputError,
                 "complex data (complex64); pass a magnitude image", id="complex"),
    pytest.param(partial(array, make=rgb), InputError, "RGB or structured data", id="rgb"),
    pytest.param(partial(header, scl_slope=2.0, scl_inter=NAN), InputError,
                 "not a readable NIfTI file (HeaderDataError: Valid slope but invalid intercept",
                 id="intercept-nan"),
    pytest.param(partial(header, scl_slope=3e38), InputError, "voxels are NaN or infinite",
                 id="slope-overflows"),
    pytest.param(partial(truncate_data, keep=0.5), InputError,
                 "not a readable NIfTI file (OSError: Expected", id="truncated-data"),
    pytest.param(partial(cut_gzip, keep=0.5), InputError,
                 "Compressed file ended before the end-of-stream marker", id="gzip-cut"),
    pytest.param(partial(flip_byte, from_end=6), InputError, "CRC check failed",
                 id="gzip-crc-wrong"),
    pytest.param(partial(flip_byte, from_end=10**9), InputError, "is not a gzip file",
                 id="gzip-magic-wrong"),
    pytest.param(lambda p: p.write_bytes(b""), InputError, "Empty file", id="empty-file"),
]


@pytest.mark.parametrize(("mutate", "error", "phrase"), CASES)
def test_broken_nifti_one_line(water: Path, mutate: Mutation, error: type[VertebrafatError],
                               phrase: str) -> None:
    mutate(water)
    outcome = load_outcome(water.parent)
    assert type(outcome) is error, outcome
    assert str(outcome).startswith(f"{water}: "), outcome
    assert phrase in str(outcome), outcome


@pytest.mark.parametrize(("mutate", "scale"), [
    pytest.param(partial(header, pixdim=[-1, 0, 0, 0, 1, 1, 1, 1]), 1.0,
                 id="sform-with-zero-pixdim"),
    pytest.param(partial(header, sform_code=0), 1.0, id="qform-only"),
    pytest.param(partial(header, qform_code=0), 1.0, id="sform-only"),
    pytest.param(partial(header, scl_slope=0.0), 1.0, id="slope-0-means-unscaled"),
    pytest.param(partial(header, scl_slope=NAN), 1.0, id="slope-nan-means-unscaled"),
    pytest.param(partial(header, scl_slope=2.0), 2.0, id="slope-2"),
    pytest.param(partial(array, make=lambda a: a[..., None]), 1.0, id="4d-one-volume"),
])
def test_valid_header_variant_loads(water: Path, phantom: Path, mutate: Mutation,
                                    scale: float) -> None:
    reference = nib.load(phantom)
    mutate(water)
    image = load_outcome(water.parent)
    assert isinstance(image, WaterFatImage), image
    np.testing.assert_allclose(image.water, scale * np.asarray(reference.dataobj), rtol=1e-6)
    np.testing.assert_allclose(image.affine, reference.affine, atol=1e-4)


def test_shear_is_kept_not_dropped(water: Path, phantom: Path) -> None:
    sheared = nib.load(phantom).affine.copy()
    sheared[1, 0] += 2.0
    header(water, qform_code=0, srow_y=sheared[1])
    image = load_outcome(water.parent)
    assert isinstance(image, WaterFatImage), image
    np.testing.assert_allclose(image.affine, sheared, atol=1e-4)


def test_fat_without_orientation_is_named(water: Path) -> None:
    fat = water.with_name("fat.nii.gz")
    shutil.copy(water, fat)
    header(fat, sform_code=0, qform_code=0)
    outcome = load_outcome(water.parent)
    assert isinstance(outcome, InputError)
    assert str(outcome).startswith(f"{fat}: no orientation in the header")


def test_cli_one_line_exit_2(water: Path, capsys: pytest.CaptureFixture[str]) -> None:
    array(water, lambda a: np.stack([a] * 3, axis=-1))
    assert main(["info", str(water)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {water}: 4D with 3 volumes; pass one volume\n"


# -- header fields mutated at random ----------------------------------------------------------

ODD = st.sampled_from([0.0, -1.0, 1.0, 4.2, 1e-12, 1e12, NAN, INF, -INF])
FIELDS = st.one_of(
    st.tuples(st.just("pixdim"), st.lists(ODD, min_size=8, max_size=8)),
    st.tuples(st.sampled_from(["sform_code", "qform_code"]), st.integers(-2, 10)),
    st.tuples(st.sampled_from(["srow_x", "srow_y", "srow_z"]),
              st.lists(ODD, min_size=4, max_size=4)),
    st.tuples(st.sampled_from(["quatern_b", "quatern_c", "quatern_d", "qoffset_x",
                               "scl_slope", "scl_inter"]), ODD),
    st.tuples(st.just("dim"), st.lists(st.integers(-1, 40), min_size=8, max_size=8)),
    st.tuples(st.just("datatype"),
              st.sampled_from([0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1792, 2304, 9999])),
    st.tuples(st.just("vox_offset"), st.sampled_from([0.0, 351.0, 352.0, 1e9, -1.0])),
)
DAMAGE = st.one_of(
    st.none(),
    st.builds(partial, st.just(truncate_data), keep=st.floats(0.0, 0.999)),
    st.builds(partial, st.just(cut_gzip), keep=st.floats(0.0, 0.999)),
    st.builds(partial, st.just(flip_byte), from_end=st.integers(1, 4000)),
    st.builds(partial, st.just(array), make=st.sampled_from([
        lambda a: np.stack([a] * 2, axis=-1), lambda a: a[0], lambda a: a[:1],
        lambda a: a[..., None, None], lambda a: a.astype(np.complex64), rgb,
        lambda a: a.astype(np.float64), lambda a: a.astype(np.uint8)])),
)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(fields=st.lists(FIELDS, max_size=3), damage=DAMAGE)
def test_mutated_nifti_ends_in_result_or_one_line(
    phantom: Path, fields: list[tuple[str, object]], damage: Mutation | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "study").mkdir()
        path = Path(shutil.copy(phantom, Path(tmp) / "study" / "water.nii.gz"))
        if damage is not None and damage.func is array:  # type: ignore[attr-defined]
            damage(path)
        header(path, **dict(fields))
        if damage is not None and damage.func is not array:  # type: ignore[attr-defined]
            damage(path)
        load_outcome(path.parent)
