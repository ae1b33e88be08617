"""Writing a phantom scan to disk: a NIfTI study folder with its truth, optionally DICOM.

Layout of ``OUT/P001`` (scan 1) or ``OUT/P001-scan2``::

    water.nii.gz fat.nii.gz ff.nii.gz r2star.nii.gz   the study (a valid NIfTI study folder)
    labels.nii.gz                                      truth (VerSe labels)
    rater_a.nii.gz rater_b.nii.gz annotated_slices.json
    ribs.nii.gz                                        rib mask (1; the T12 cue's truth)
    truth.csv lesions.json acquisition.json study.json
    echoes.npz                                         ``echoes`` (complex64, (echoes, slices,
                                                       rows, cols)), ``echo_times_ms``,
                                                       ``affine``, ``field_strength_t``,
                                                       ``precession_clockwise`` (True)
    dicom-ge/ dicom-siemens/ dicom-philips/            when asked
    dicom-ge-enhanced/ ... dicom-philips-enhanced/     when asked: the same series as enhanced
                                                       multi-frame objects (Philips: one)
    nifti-dcm2niix/                                    when asked: the GE series as dcm2niix
                                                       converts them (slice axis last, sidecars)

The folder is written under a temporary name and renamed when complete, so a failed run leaves
no partial study. Same study -> identical bytes (gzip and zip timestamps are fixed).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.io.atomic import output_errors
from vertebrafat.io.nifti import save_labels, save_volume
from vertebrafat.io.table import save_table
from vertebrafat.phantom import PhantomStudy, subject_id

FORMATS: tuple[str, ...] = (
    "nifti", "dicom-ge", "dicom-siemens", "dicom-philips", "nifti-dcm2niix",
    "dicom-ge-enhanced", "dicom-siemens-enhanced", "dicom-philips-enhanced",
)


def study_folder_name(study: PhantomStudy) -> str:
    """``P001`` for scan 1, ``P001-scan2`` for scan 2."""
    meta = study.image.meta
    return meta.subject if meta.scan == "1" else f"{meta.subject}-scan{meta.scan}"


def expand_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """Validate ``formats`` (``all`` = every one) and return them in canonical order.

    Raises
    ------
    InputError
        On an unknown format name.
    """
    wanted: set[str] = set()
    for f in formats:
        if f == "all":
            wanted.update(FORMATS)
        elif f in FORMATS:
            wanted.add(f)
        else:
            raise InputError(
                f"phantom: unknown format {f!r} (choose from {', '.join(FORMATS)}, all)"
            )
    return tuple(f for f in FORMATS if f in wanted)


def _json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps (reproducible bytes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def _write_into(study: PhantomStudy, folder: Path, formats: tuple[str, ...]) -> None:
    img, aff = study.image, study.image.affine
    save_volume(img.water.astype(np.int16), aff, folder / "water.nii.gz")
    save_volume(img.fat.astype(np.int16), aff, folder / "fat.nii.gz")  # type: ignore[union-attr]
    # FF (0.1 %) and R2* (0.1 1/s) are rounded to tenths: int16 tenths with scl_slope 0.1
    for name, values in (("ff", img.ff), ("r2star", img.r2star)):
        tenths = np.round(np.asarray(values) * 10).astype(np.int16)
        save_volume(tenths, aff, folder / f"{name}.nii.gz", slope=0.1)
    save_labels(study.labels, aff, folder / "labels.nii.gz")
    save_labels(study.rater_a, aff, folder / "rater_a.nii.gz")
    save_labels(study.rater_b, aff, folder / "rater_b.nii.gz")
    save_labels(study.ribs.astype(np.uint8), aff, folder / "ribs.nii.gz")
    _json(folder / "annotated_slices.json", list(study.annotated_slices))
    save_table(study.truth, folder / "truth.csv")
    _json(folder / "lesions.json", [les.as_dict() for les in study.lesions])
    _json(folder / "acquisition.json", study.acquisition.as_dict())
    _json(
        folder / "study.json",
        {
            "subject": img.meta.subject,
            "scan": img.meta.scan,
            "seed": study.seed,
            "index": study.index,
            "vendor": "phantom",
            "age_years": round(study.marrow.age_years, 1),
            "baseline_bmf_percent": round(100 * study.marrow.baseline_ff, 2),
            "lordosis_deg": round(study.anatomy.lordosis_deg, 1),
            "transitional": study.anatomy.transitional or None,
        },
    )
    if study.echoes is not None:
        _npz(
            folder / "echoes.npz",
            {
                "echoes": study.echoes,
                "echo_times_ms": np.asarray(study.acquisition.echo_times_ms),
                "affine": aff,
                "field_strength_t": np.asarray(study.acquisition.field_strength_t),
                "precession_clockwise": np.asarray(True),
            },
        )
    for fmt in formats:
        if fmt == "nifti-dcm2niix":
            from vertebrafat.io.dcm2niix import save_dcm2niix_study

            save_dcm2niix_study(img, folder / fmt, vendor="ge", folder_name=img.meta.subject)
        elif fmt.startswith("dicom-"):
            from vertebrafat.io.dicom.write import save_dicom_study
            from vertebrafat.io.dicom.write_enhanced import save_enhanced_dicom_study

            vendor = fmt.removeprefix("dicom-").removesuffix("-enhanced")
            save = save_enhanced_dicom_study if fmt.endswith("-enhanced") else save_dicom_study
            save(
                img,
                folder / fmt,
                vendor=vendor,  # type: ignore[arg-type]
                patient_name=f"PHANTOM^{img.meta.subject}",
                patient_id=img.meta.subject,
                uid_seed=study.seed * 1_000_003 + study.index * 10 + int(img.meta.scan),
            )


def save_phantom_study(
    study: PhantomStudy, out_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("nifti",)
) -> Path:
    """Write ``study`` into the folder ``out_dir`` (replaced if it exists); returns it.

    ``formats``: any of :data:`FORMATS` or ``all``. The NIfTI files and the truth are always
    written (they are the study's ground truth); DICOM sub-folders only when asked.

    Raises
    ------
    InputError
        On an unknown format.
    """
    fmts = expand_formats(formats)
    out = Path(out_dir)
    tmp = out.parent / f".{out.name}.partial"
    with output_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    try:
        with output_errors(out):
            _write_into(study, tmp, fmts)
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def save_phantom_preview(study: PhantomStudy, path: str | os.PathLike[str]) -> None:
    """PNG of the mid-sagittal slice: water, fat, FF (%), R2* (1/s) and the truth labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from vertebrafat.core.labels import COLOUR_OF_LABEL
    from vertebrafat.io.atomic import atomic_path

    img = study.image
    i = int(np.argmax((study.labels > 0).sum(axis=(1, 2))))
    colours = np.zeros((256, 4))
    for label, rgb in COLOUR_OF_LABEL.items():
        colours[label] = (*(c / 255 for c in rgb), 0.55)
    spacing = np.linalg.norm(img.affine[:3, 1:3], axis=0)
    aspect = float(spacing[0] / spacing[1])
    wmax = float(np.percentile(img.water[i], 99.5))
    blank = np.zeros_like(img.water)
    panels = [
        ("water", img.water[i], "gray", 0.0, wmax),
        ("fat", (img.fat if img.fat is not None else blank)[i], "gray", 0.0, wmax),
        ("FF %", (img.ff if img.ff is not None else blank)[i], "magma", 0.0, 100.0),
        ("R2* 1/s", (img.r2star if img.r2star is not None else blank)[i], "viridis", 0.0, 300.0),
    ]
    fig, axes = plt.subplots(1, 5, figsize=(17, 4.2))
    for ax, (title, arr, cmap, lo, hi) in zip(axes, panels, strict=False):
        shown = ax.imshow(arr, cmap=cmap, vmin=lo, vmax=hi, aspect=aspect)
        ax.set_title(title)
        fig.colorbar(shown, ax=ax, fraction=0.046)
    axes[4].imshow(img.water[i], cmap="gray", vmin=0.0, vmax=wmax, aspect=aspect)
    axes[4].imshow(
        study.labels[i],
        cmap=ListedColormap(colours),
        vmin=0,
        vmax=255,
        interpolation="nearest",
        aspect=aspect,
    )
    axes[4].set_title("truth labels")
    for ax in axes:
        ax.set_axis_off()
    acq = study.acquisition
    fig.suptitle(
        f"{img.meta.subject} scan {img.meta.scan}, slice {i}: {acq.field_strength_t:g} T, "
        f"SNR {acq.snr:g}, {acq.n_slices}x{acq.matrix[0]}x{acq.matrix[1]}, "
        f"{acq.slice_thickness_mm:g} mm slices"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=70, format="png")
    plt.close(fig)


def _write_scan(
    out_dir: Path,
    seed: int,
    index: int,
    scan: int,
    formats: tuple[str, ...],
    echoes: bool,
    preview: bool,
    id_prefix: str = "",
    b0_ramp_periods: float = 0.0,
) -> Path:
    """Generate scan ``scan`` of subject ``index`` and write its folder (a worker's task)."""
    from vertebrafat.phantom import PhantomConfig, generate_subject

    study = generate_subject(seed=seed, index=index, scan=scan, echoes=echoes,
                             id_prefix=id_prefix,
                             config=PhantomConfig(b0_ramp_periods=b0_ramp_periods))
    folder = save_phantom_study(study, out_dir / study_folder_name(study), formats=formats)
    if preview:
        save_phantom_preview(study, folder / "preview.png")
    return folder


def write_phantom_cohort(
    out_dir: str | os.PathLike[str],
    *,
    n_subjects: int,
    seed: int,
    rescans: bool = False,
    formats: Sequence[str] = ("nifti",),
    echoes: bool = False,
    preview: bool = False,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
    first_scan_formats: Sequence[str] = (),
    id_prefix: str = "",
    b0_ramp_periods: float = 0.0,
) -> list[Path]:
    """Generate and write a phantom cohort (one folder per scan, see module docstring).

    ``first_scan_formats`` are written for the first scan of the first subject in addition to
    ``formats`` (the demo's one DICOM study).

    ``preview`` adds ``preview.png`` to each study folder. ``workers`` > 1 generates scans in
    that many processes (each scan has its own random streams, so the bytes do not depend on
    it). ``progress`` is called with each folder name, in cohort order, once written.
    Returns the study folders in cohort order (P001, P001-scan2, P002, ...). ``id_prefix`` is
    put before every subject id and folder name (``"s7-"``: s7-P001, s7-P001-scan2, ...), so
    that two cohorts written with different seeds can be pooled without sharing ids.
    ``b0_ramp_periods`` adds a B0 ramp of that many water-fat shifts across the field of view
    to the echoes (:class:`vertebrafat.phantom.PhantomConfig`); the maps do not change.

    Raises
    ------
    InputError
        On an unknown format, ``n_subjects < 1``, ``workers < 1`` or an ``id_prefix`` that is
        not letters, digits, ``-``, ``_`` and ``.``.
    """
    fmts = expand_formats(formats)
    subject_id(0, prefix=id_prefix)  # refuses a prefix unfit for folder names
    if n_subjects < 1:
        raise InputError(f"phantom: --subjects must be at least 1, got {n_subjects}")
    if workers < 1:
        raise InputError(f"phantom: --workers must be at least 1, got {workers}")
    first = expand_formats([*formats, *first_scan_formats])
    tasks = [
        (Path(out_dir), seed, index, scan, first if (index, scan) == (0, 1) else fmts, echoes,
         preview, id_prefix, b0_ramp_periods)
        for index in range(n_subjects)
        for scan in ((1, 2) if rescans else (1,))
    ]
    folders: list[Path] = []
    with ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
            done: Iterator[Path] = pool.map(_write_scan, *zip(*tasks, strict=True))
        else:
            done = (_write_scan(*task) for task in tasks)
        for folder in done:
            folders.append(folder)
            if progress is not None:
                progress(folder.name)
    return folders
