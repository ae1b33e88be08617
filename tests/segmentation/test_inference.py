"""segmentation/: orientation, resampling, post-processing and ONNX inference on tiny exact cases.

The model here is a hand-built ONNX graph (no torch): a 1x1 convolution whose softmax makes a
pixel "vertebral body" exactly when its normalised water exceeds 0.5, so every expected mask is
known from construction.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from vertebrafat.core.errors import GeometryError, ModelError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.core.model_card import ModelCard
from vertebrafat.io.model import sha256_of
from vertebrafat.segmentation.inference import (
    canonical_axes,
    canonical_input,
    first_argmax,
    from_canonical,
    linear_matrix,
    model_planes,
    model_shape,
    postprocess,
    predict,
    resample_linear,
    shifted_slices,
    to_canonical,
)
from vertebrafat.segmentation.model import SegmentationModel
from vertebrafat.workflows.loading import load_model

SPACING = 1.25
# MyoSegmenTUM-like: slices L->R? (-x), rows head->feet (-z), cols anterior->posterior (-y).
AFFINE = np.array(
    [[-SPACING, 0, 0, 10.0], [0, 0, -SPACING, 50.0], [0, -SPACING, 0, 60.0], [0, 0, 0, 1]]
)


def threshold_onnx(n_planes: int = 1) -> bytes:
    """logits = [0, 40 * (water - 0.5)] per pixel: body where normalised water > 0.5."""
    w = np.zeros((2, n_planes, 1, 1), dtype=np.float32)
    w[1, 0] = 40.0
    b = np.array([0.0, -20.0], dtype=np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["logits"])
    graph = helper.make_graph(
        [node],
        "threshold",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", n_planes, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 2, "h", "w"])],
        [
            helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
            helper.make_tensor("b", TensorProto.FLOAT, b.shape, b),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def make_model(
    *, channels: tuple[str, ...] = ("water",), optional: tuple[str, ...] = ()
) -> SegmentationModel:
    card = ModelCard(
        name="threshold",
        channels=channels,
        optional_channels=optional,
        classes=("background", "vertebral_body"),
        pixel_spacing_mm=SPACING,
        min_component_ml=0.01,
    )
    session = ort.InferenceSession(
        threshold_onnx(card.n_planes), providers=["CPUExecutionProvider"]
    )
    return SegmentationModel(card=card, session=session)


def block_image(affine: np.ndarray = AFFINE) -> tuple[WaterFatImage, np.ndarray]:
    """Water 0.2 everywhere, 1.0 in two bodies; returns the image and the body mask."""
    water = np.full((5, 40, 24), 0.2, dtype=np.float32)
    body = np.zeros(water.shape, dtype=bool)
    body[1:4, 5:15, 6:18] = True
    body[1:4, 22:33, 5:17] = True
    water[body] = 1.0
    return WaterFatImage(water=water, affine=affine), body


def test_canonical_axes_of_myosegmentum_layout_is_identity() -> None:
    assert canonical_axes(AFFINE) == (False, False, False)


def test_canonical_axes_detects_flips_and_transpose() -> None:
    flipped = AFFINE.copy()
    flipped[:3, 1] *= -1
    swapped = AFFINE[:, [0, 2, 1, 3]]
    assert canonical_axes(flipped) == (False, True, False)
    assert canonical_axes(swapped) == (True, False, False)


def test_axial_slices_are_refused() -> None:
    axial = np.diag([0.0, 1.0, 1.0, 1.0])
    axial[2, 0] = 1.0
    axial[0, 2] = 1.0
    with pytest.raises(GeometryError, match="not sagittal"):
        canonical_axes(axial)


@pytest.mark.parametrize(
    "axes",
    [
        pytest.param((t, r, c), id=f"t{t:d}r{r:d}c{c:d}")
        for t in (False, True)
        for r in (False, True)
        for c in (False, True)
    ],
)
def test_from_canonical_inverts_to_canonical(axes: tuple[bool, bool, bool]) -> None:
    vol = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    np.testing.assert_array_equal(from_canonical(to_canonical(vol, axes), axes), vol)


def test_linear_matrix_halves_by_averaging_neighbours() -> None:
    np.testing.assert_allclose(linear_matrix(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


def test_model_shape_snaps_to_the_divisor_within_tolerance() -> None:
    # 256 px of 1.418 mm at 1.25 mm: 290 px; 288 is 0.7 % away, so no padding to 304.
    # 224 px of 1 mm: 179 px; 176 is 1.7 % away
    assert model_shape((256, 224), (1.418, 1.0), 1.25, divisor=16) == (288, 176)
    # 200 px: the nearest multiple, 192, is 4 % away (kept, padded later); 10 px: 16 is 60 %
    assert model_shape((200, 10), (1.25, 1.25), 1.25, divisor=16) == (200, 10)
    assert model_shape((256, 224), (1.418, 1.0), 1.25) == (290, 179)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.floats(-5, 5))
def test_resampling_keeps_a_constant_image_constant(n_in: int, n_out: int, value: float) -> None:
    out = resample_linear(np.full((2, n_in, 3), value, dtype=np.float32), (n_out, 3))
    assert out.shape == (2, n_out, 3)
    np.testing.assert_allclose(out, value, atol=1e-5)


def test_shifted_slices_interpolates_and_repeats_edges() -> None:
    vol = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), dtype=np.float32)
    np.testing.assert_allclose(shifted_slices(vol, 1.5)[:, 0, 0], [1.5, 2.5, 3, 3])
    np.testing.assert_allclose(shifted_slices(vol, -1.0)[:, 0, 0], [0, 0, 1, 2])


def test_context_planes_do_not_depend_on_slice_order() -> None:
    image, _ = block_image()
    card = ModelCard(
        name="c",
        channels=("water",),
        optional_channels=(),
        classes=("vertebral_body",),
        pixel_spacing_mm=SPACING,
        context_mm=(2.5,),
    )
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = image.shape[0] - 1
    flipped = WaterFatImage(water=image.water[::-1].copy(), affine=AFFINE @ flip)
    planes = model_planes(image, card)
    assert planes.shape == (3, 5, 40, 24)
    np.testing.assert_allclose(model_planes(flipped, card)[:, ::-1], planes, atol=1e-6)
    # slice 0: neighbours 2 slices away are slice 0 (edge) and slice 2 -> mean (0.2 + 1.0) / 2
    assert planes[1, 0, 10, 10] == pytest.approx(0.6)
    assert planes[2, 0, 10, 10] == pytest.approx(0.8)


def test_postprocess_removes_specks_and_fills_holes() -> None:
    mask = np.zeros((3, 12, 12), dtype=bool)
    mask[:, 2:9, 2:9] = True
    mask[1, 5, 5] = False  # hole
    mask[1, 11, 11] = True  # one-voxel speck
    out = postprocess(mask, voxel_ml=0.001, min_component_ml=0.002)
    expected = np.zeros_like(mask)
    expected[:, 2:9, 2:9] = True
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("seed", range(4))
def test_postprocess_equals_the_whole_plane_computation(seed: int) -> None:
    """Labelled and filled inside the in-plane box of the mask: the same voxels as labelling
    and filling every whole slice (blobs with holes, specks, components at the borders)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    mask = ndi.binary_opening(rng.random((6, 40, 50)) > 0.55, iterations=1)
    mask[:, 10:20, 15:30] |= True
    mask[2, 14, 20] = False  # a hole in one slice
    labelled, _ = ndi.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    kept = np.isin(labelled, np.flatnonzero(np.bincount(labelled.ravel()) * 0.01 >= 0.05)) \
        & (labelled > 0)
    expected = np.stack([ndi.binary_fill_holes(plane) for plane in kept])
    out = postprocess(mask, voxel_ml=0.01, min_component_ml=0.05)
    np.testing.assert_array_equal(out, expected)
    assert not postprocess(np.zeros((2, 3, 4), dtype=bool), voxel_ml=1.0,
                           min_component_ml=0.0).any()


def test_predict_finds_the_bright_blocks_exactly() -> None:
    image, body = block_image()
    seg = predict(make_model(), image)
    np.testing.assert_array_equal(seg.mask, body)
    assert seg.sacrum is None
    assert seg.probability.dtype == np.float32
    assert seg.probability[body].min() > 0.99
    assert seg.probability[~body].max() < 0.01


def test_on_network_start_runs_once_after_the_input_and_before_the_network() -> None:
    model = make_model()
    events: list[str] = []
    real_run = model.session.run

    class Recording:
        def run(self, *args: object, **kwargs: object) -> object:
            events.append("run")
            return real_run(*args, **kwargs)

    image, body = block_image()
    seg = predict(dataclasses.replace(model, session=Recording()), image,  # type: ignore[arg-type]
                  on_network_start=lambda: events.append("start"))
    np.testing.assert_array_equal(seg.mask, body)
    assert events == ["start"] + ["run"] * image.shape[0]  # one run a slice


def test_predict_is_invariant_to_slice_order() -> None:
    image, _ = block_image()
    order = np.array([3, 0, 4, 1, 2])
    shuffled = WaterFatImage(water=image.water[order], affine=AFFINE)
    model = make_model()
    np.testing.assert_array_equal(predict(model, shuffled).mask, predict(model, image).mask[order])
    np.testing.assert_allclose(
        predict(model, shuffled).probability, predict(model, image).probability[order], atol=1e-6
    )


@pytest.mark.parametrize(
    "axis", [pytest.param(0, id="slices"), pytest.param(1, id="rows"), pytest.param(2, id="cols")]
)
def test_predict_is_invariant_to_flipping_array_and_affine(axis: int) -> None:
    image, _ = block_image()
    n = image.shape[axis]
    flip = np.eye(4)
    flip[axis, axis] = -1
    flip[axis, 3] = n - 1
    flipped = WaterFatImage(water=np.flip(image.water, axis).copy(), affine=AFFINE @ flip)
    model = make_model()
    ref, got = predict(model, image), predict(model, flipped)
    np.testing.assert_array_equal(np.flip(got.mask, axis), ref.mask)
    np.testing.assert_allclose(np.flip(got.probability, axis), ref.probability, atol=1e-6)


def test_predict_resamples_a_finer_grid_and_back() -> None:
    image, body = block_image()
    fine_water = np.repeat(np.repeat(image.water, 2, axis=1), 2, axis=2)
    fine_body = np.repeat(np.repeat(body, 2, axis=1), 2, axis=2)
    fine_affine = AFFINE.copy()
    fine_affine[:3, 1:3] /= 2
    seg = predict(make_model(), WaterFatImage(water=fine_water, affine=fine_affine))
    assert seg.mask.shape == fine_body.shape
    dice = 2 * (seg.mask & fine_body).sum() / (seg.mask.sum() + fine_body.sum())
    assert dice > 0.95


def test_model_requiring_fat_refuses_water_only_study() -> None:
    image, _ = block_image()
    with pytest.raises(ModelError, match=r"needs channel\(s\) fat .* has only water"):
        predict(make_model(channels=("water", "fat")), image)


def test_water_only_model_refuses_study_without_water() -> None:
    image, _ = block_image()
    no_water = WaterFatImage(water=np.zeros_like(image.water), affine=AFFINE, fat=image.water)
    with pytest.raises(ModelError, match=r"needs channel\(s\) water .* has only fat"):
        predict(make_model(), no_water)


def test_optional_channel_may_be_missing() -> None:
    image, body = block_image()
    seg = predict(make_model(channels=("water", "fat"), optional=("fat",)), image)
    np.testing.assert_array_equal(seg.mask, body)


def test_canonical_input_fills_constant_planes_as_interpolation_would() -> None:
    """Presence planes and a missing channel are filled, not interpolated: on a grid resampled
    from 1.25 to 0.8 mm the input equals resampling every plane."""
    water, _ = block_image(AFFINE @ np.diag([1.0, 0.64, 0.64, 1.0]))
    image = dataclasses.replace(water, fat=0.3 * water.water)
    card = make_model(channels=("water", "fat", "ff"), optional=("fat", "ff")).card
    x, axes = canonical_input(image, card)
    planes = to_canonical(model_planes(image, card), axes)
    expected = np.moveaxis(resample_linear(np.ascontiguousarray(planes), x.shape[2:]), 0, 1)
    assert x.shape == (5, 5, 26, 15)  # water, fat, ff, has_fat, has_ff on 40 x 24 at 0.8 mm
    np.testing.assert_array_equal(x, expected)
    assert (x[:, 2] == 0).all() and (x[:, 3] == 1).all() and (x[:, 4] == 0).all()


def _write_model(folder: Path) -> Path:
    blob = threshold_onnx()
    (folder / "m.onnx").write_bytes(blob)
    card = {
        "name": "m",
        "sha256": sha256_of(folder / "m.onnx"),
        "input": {
            "channels": ["water"],
            "optional_channels": [],
            "pixel_spacing_mm": SPACING,
            "divisor": 16,
            "normalisation": {
                "water_fat_percentile": 99.0,
                "ff_divisor": 100.0,
                "r2star_divisor_per_s": 200.0,
            },
        },
        "output": {
            "classes": ["background", "vertebral_body"],
            "threshold": 0.5,
            "min_component_ml": 0.01,
        },
    }
    (folder / "m.json").write_text(json.dumps(card))
    return folder / "m.onnx"


def test_load_model_reads_card_and_runs(tmp_path: Path) -> None:
    model = load_model(_write_model(tmp_path))
    image, body = block_image()
    assert model.card.channels == ("water",)
    np.testing.assert_array_equal(predict(model, image).mask, body)


def test_load_model_refuses_wrong_checksum(tmp_path: Path) -> None:
    path = _write_model(tmp_path)
    card = json.loads((tmp_path / "m.json").read_text())
    card["sha256"] = "0" * 64
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="does not match the model card"):
        load_model(path)


def test_load_model_refuses_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "absent.onnx")


def test_shipped_model_loads_and_is_valid_onnx() -> None:
    model = load_model()
    assert model.card.required_channels == ("water",)
    assert model.card.classes[1] == "vertebral_body"
    onnx.checker.check_model(onnx.load(model.source))


def test_resample_linear_equals_two_tap_interpolation() -> None:
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 10, 13), dtype=np.float32)
    out_shape = (7, 17)
    # the same pixel-centre mapping, evaluated by scipy (order 1, edges clamped)
    r = np.clip((np.arange(7) + 0.5) * 10 / 7 - 0.5, 0, 9)
    c = np.clip((np.arange(17) + 0.5) * 13 / 17 - 0.5, 0, 12)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    expected = np.stack([[ndi.map_coordinates(p, [rr, cc], order=1, mode="nearest") for p in v]
                         for v in x])
    got = resample_linear(x, out_shape)
    assert got.shape == (2, 3, 7, 17) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.array_equal(resample_linear(x, (10, 13)), x)


@pytest.mark.parametrize("n_in, n_out", [((100, 70), (130, 45)), ((256, 256), (288, 288)),
                                          ((288, 288), (256, 256))],
                         ids=["mixed", "model-grid-in", "model-grid-out"])
def test_resample_linear_in_bands_equals_the_dense_product(
    n_in: tuple[int, int], n_out: tuple[int, int]
) -> None:
    """Several bands of :data:`RESAMPLE_BLOCK` rows and columns: the dense ``R @ x @ C.T`` in
    float64, to float32 rounding."""
    x = np.random.default_rng(1).random((3, *n_in), dtype=np.float32)
    rows, cols = linear_matrix(n_in[0], n_out[0]), linear_matrix(n_in[1], n_out[1])
    expected = rows.astype(np.float64) @ x @ cols.T.astype(np.float64)
    got = resample_linear(x, n_out)
    assert got.shape == (3, *n_out) and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=0, atol=3e-7)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS runs one thread anyway")
def test_resample_linear_bytes_do_not_depend_on_the_blas_threads() -> None:
    """20 planes of 256^2 -> 288^2 (the shipped model's grid): the same bytes with BLAS allowed
    two threads as with one (``segment`` runs BLAS on two, Dask workers on one). A threaded
    OpenBLAS product rounds differently: on this input 0.4 % of the values differed."""
    from threadpoolctl import threadpool_limits

    x = np.random.default_rng(0).random((20, 256, 256), dtype=np.float32)
    with threadpool_limits(limits=2, user_api="blas"):
        two = resample_linear(x, (288, 288))
    with threadpool_limits(limits=1, user_api="blas"):
        one = resample_linear(x, (288, 288))
    assert two.tobytes() == one.tobytes()


class _RibSession:
    """Softmax logits: background 5 everywhere, rib 10 where the normalised water is > 0.5."""

    def run(self, output_names: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feed["x"]
        logits = np.zeros((x.shape[0], 4, x.shape[2], x.shape[3]), dtype=np.float32)
        logits[:, 0] = 5.0
        logits[:, 3] = np.where(x[:, 0] > 0.5, 10.0, 0.0)
        return [logits]


def test_rib_class_is_used_only_with_a_fat_or_ff_image() -> None:
    card = ModelCard(
        name="ribs",
        channels=("water", "fat"),
        optional_channels=("fat",),
        classes=("background", "vertebral_body", "sacrum", "rib"),
        pixel_spacing_mm=SPACING,
    )
    model = SegmentationModel(card=card, session=_RibSession())
    image, body = block_image()
    assert predict(model, image).ribs is None  # water only: ribs not trusted
    with_fat = WaterFatImage(water=image.water, fat=1.0 - image.water, affine=image.affine)
    ribs = predict(model, with_fat).ribs
    assert ribs is not None
    assert np.array_equal(ribs, body)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_first_argmax_equals_numpy_argmax_with_ties(n_classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.integers(0, 3, (n_classes, 3, 5, 7)).astype(np.float32)  # many ties
    best = first_argmax(probs)
    assert best.dtype == np.int8
    np.testing.assert_array_equal(best, np.argmax(probs, axis=0))


def test_first_argmax_by_construction() -> None:
    probs = np.array([[0.5, 0.2, 0.4], [0.5, 0.7, 0.1], [0.0, 0.1, 0.5]], dtype=np.float32)
    assert first_argmax(probs).tolist() == [0, 1, 2]  # the tie in column 0 goes to class 0
