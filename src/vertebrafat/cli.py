"""The command line: a thin Typer layer, one verb per stage, each a call of the public API.

Heavy imports (onnxruntime, torch, dask, matplotlib) happen inside the command that needs them,
so ``vertebrafat --help`` starts fast. Results go to stdout (aligned tables for people, or JSON
with ``--json``); progress, file lists and notes go to stderr. Every
:class:`~vertebrafat.VertebrafatError` becomes one line on stderr and exit code 2; tracebacks
only with ``--debug``, which is accepted anywhere on the command line.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vertebrafat.core.errors import InputError, VertebrafatError
from vertebrafat.core.schema import DEFAULT_EROSION_MM, KEY_COLUMNS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from vertebrafat.workflows.display import TextTable
    from vertebrafat.workflows.progress import Progress as LongProgress

app = typer.Typer(
    name="vertebrafat",
    help="Lumbar vertebral bone marrow fat fraction from water-fat MRI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no boxes, no "<bool>" beside flags
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _version(value: bool) -> None:
    if value:
        from vertebrafat.core.version import __version__

        typer.echo(f"vertebrafat {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks on errors (accepted anywhere on the command line).")
    ] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Lumbar vertebral bone marrow fat fraction (BMF) from water-fat MRI.

    Example: vertebrafat segment /data/sub01/dicom out/sub01
    """


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr): colours and wrapping only on a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(file=stream, force_terminal=tty, no_color=not tty, highlight=False,
                   width=None if tty else 10_000, soft_wrap=not tty)


def progress_bar(*, quiet: bool) -> Progress:
    """A transient progress bar on stderr, shown only when stderr is a terminal."""
    from rich.progress import Progress

    err = console(stderr=True)
    return Progress(transient=True, disable=quiet or not err.is_terminal, console=err)


def long_progress(
    what: str, *, quiet: bool, every: int = 10, seconds: float = 60.0
) -> LongProgress:
    """Progress of a long run on stderr: a live bar on a terminal, else a line every ``every``
    items or ``seconds`` (:class:`vertebrafat.workflows.progress.Progress`)."""
    from vertebrafat.workflows.progress import Progress as Long

    return Long(what, console=console(stderr=True), write=say, quiet=quiet, every=every,
                seconds=seconds)


def say(message: str) -> None:
    """A message for people (progress, files written, notes): stderr, never stdout."""
    typer.echo(message, err=True)


def emit(
    obj: Any, *, as_json: bool, tables: Sequence[TextTable] = (), text: str | None = None
) -> None:
    """Print ``obj`` as JSON (``--json``), else ``text`` and ``tables`` for people (tables'
    notes on stderr)."""
    if as_json:
        typer.echo(json.dumps(obj, indent=2, default=_json_default))
        return
    from vertebrafat.workflows.display import plain_table

    if text is not None:
        typer.echo(text)
    tty = sys.stdout.isatty()
    for k, t in enumerate(tables):
        if k > 0:
            typer.echo("")
        plain = None if tty else plain_table(t)
        if plain is not None:  # pipes and files: the same text without rich
            typer.echo(plain, nl=False)
        elif tty:
            console().print(_rich_table(t))
        else:  # plain text for pipes and files: no trailing blanks
            out = console()
            with out.capture() as captured:
                out.print(_rich_table(t))
            typer.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))
        for note in t.notes:
            say(f"note: {note}")


def _rich_table(t: TextTable) -> Any:
    from rich import box
    from rich.table import Table

    from vertebrafat.workflows.display import justify

    table = Table(title=t.title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  header_style="bold", pad_edge=False, show_edge=False)
    for name, side in zip(t.header, justify(t), strict=True):
        table.add_column(name, justify=side, no_wrap=True)
    for row in t.rows:
        table.add_row(*row)
    return table


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---- commands (each section owned by one module; keep them ~10 lines) ----------------------

# [io commands]

SeriesOpt = Annotated[
    list[str] | None,
    typer.Option("--series", help="Pick a series where several fit a role: ROLE=NUMBER."),
]
FFScaleStudyOpt = Annotated[
    float | None, typer.Option("--ff-scale", help="Full scale of the FF map: 1, 100 or 1000.")
]
OrientationOpt = Annotated[
    bool, typer.Option("--allow-orientation", help="Accept a non-sagittal acquisition.")
]
RolePathOpt = Annotated[Path | None, typer.Option(help="Explicit NIfTI file for this role.")]


def study_kwargs(
    series: list[str] | None, ff_scale: float | None, allow_orientation: bool,
    water: Path | None = None, fat: Path | None = None, ff: Path | None = None,
    r2star: Path | None = None,
) -> dict[str, Any]:
    """Keyword arguments of :func:`vertebrafat.load_study` from the CLI options."""
    from vertebrafat.io.study import parse_series_choices

    return {"series": parse_series_choices(series), "ff_scale": ff_scale,
            "allow_orientation": allow_orientation, "water": water, "fat": fat, "ff": ff,
            "r2star": r2star}


@app.command()
def info(
    study: Annotated[Path | None, typer.Argument(help="DICOM folder, NIfTI folder or file.")]
    = None,
    series: SeriesOpt = None,
    ff_scale: FFScaleStudyOpt = None,
    allow_orientation: OrientationOpt = False,
    water: RolePathOpt = None,
    fat: RolePathOpt = None,
    ff: RolePathOpt = None,
    r2star: RolePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Series, roles, geometry, FF scale and vendor of a study.

    What was found in a study: series and their roles, geometry, spacing, FF scale, vendor;
    for DICOM every image stack (role, echo time, magnitude/phase, frames of enhanced files,
    value mapping). A DICOM folder of echoes without water is described with what a
    water-fat study still needs.

    Example: vertebrafat info /data/sub01/dicom --json
    """
    from vertebrafat.workflows.display import study_tables
    from vertebrafat.workflows.loading import describe_input

    kwargs = study_kwargs(series, ff_scale, allow_orientation, water, fat, ff, r2star)
    d = describe_input(study, **kwargs)
    emit(d, as_json=as_json, tables=study_tables(d))

# [phantom commands]


@app.command()
def phantom(
    out: Annotated[Path, typer.Argument(help="Output folder (one sub-folder per scan).")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 10,
    seed: Annotated[int, typer.Option(help="Cohort seed (same seed -> same bytes).")] = 0,
    rescans: Annotated[bool, typer.Option("--rescans", help="Also a repositioned scan 2.")] = False,
    fmt: Annotated[list[str] | None, typer.Option(
        "--format", help="nifti, nifti-dcm2niix, dicom-ge, dicom-siemens, dicom-philips, "
        "dicom-ge-enhanced, dicom-siemens-enhanced, dicom-philips-enhanced (multi-frame) or "
        "all; repeatable.")
    ] = None,
    echoes: Annotated[bool, typer.Option("--echoes", help="Also write complex echoes.")] = False,
    preview: Annotated[bool, typer.Option("--preview", help="preview.png per scan.")] = False,
    workers: Annotated[int, typer.Option(help="Processes (output does not depend on it).")] = 2,
    id_prefix: Annotated[str, typer.Option(
        "--id-prefix", help="Put before every subject id and folder name ('s7-': s7-P001); "
        "give each cohort its own to pool cohorts.")] = "",
    b0_ramp: Annotated[float, typer.Option(
        "--b0-ramp", help="With --echoes: a B0 ramp of this many water-fat shifts across the "
        "field of view (tests water-fat separation; the maps do not change).")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Synthetic water-fat spine cohort: truth, raters, rescans.

    Writes one folder per scan with the truth, two raters and optional rescans.

    Subjects are P001, P002, ... in every cohort; pooling cohorts of different seeds, give
    each an --id-prefix so that no two subjects share an id.

    Example: vertebrafat phantom phantom-out --subjects 5 --seed 1 --rescans --format all
    """
    from vertebrafat.workflows.phantom_cohort import write_phantom_cohort

    with progress_bar(quiet=as_json) as bar:
        task = bar.add_task("phantom", total=subjects * (2 if rescans else 1))
        folders = write_phantom_cohort(
            out, n_subjects=subjects, seed=seed, rescans=rescans, formats=fmt or ["nifti"],
            echoes=echoes, preview=preview, workers=workers, id_prefix=id_prefix,
            b0_ramp_periods=b0_ramp, progress=lambda name: bar.advance(task))
    emit([str(f) for f in folders], as_json=as_json, text="\n".join(str(f) for f in folders))
    if not as_json:
        say(f"{len(folders)} scans written to {out}")

# [waterfat commands]


@app.command("separate")
def separate_cmd(
    source: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Echoes: ISMRM .mat, phantom echoes.npz, per-echo NIfTI folder "
        "or 4D complex NIfTI.")],
    out: Annotated[Path, typer.Argument(help="Output folder (created; all files or none).")],
    field_strength: Annotated[float | None, typer.Option(
        "--field-strength", help="B0 in tesla (default: from the file).", show_default=False)]
    = None,
    precession: Annotated[str | None, typer.Option(
        help="clockwise or anticlockwise (default: from the file, else clockwise); the wrong "
        "one swaps water and fat.", show_default=False)] = None,
    magnitude: Annotated[bool, typer.Option(
        "--magnitude", help="Fit the echo magnitudes only (no usable phase).")] = False,
    method: Annotated[str, typer.Option(
        help="Field map: graphcut, growing or voxelwise (voxelwise swaps; for comparison).")]
    = "graphcut",
    as_json: JsonOpt = False,
) -> None:
    """Water-fat separation: water, fat, FF, R2* and field map from multi-echo echoes.

    Writes water, fat, ff, r2star and fieldmap NIfTI files, separation.png and
    separation.json into OUT, a study folder that segment reads.

    Example: vertebrafat separate ../shared/data/ismrm2012/13.mat out/case13
    """
    from vertebrafat.workflows.separate import separate_study

    if precession not in (None, "clockwise", "anticlockwise"):
        raise InputError(f"separate: --precession must be clockwise or anticlockwise, got "
                         f"{precession!r}")
    summary = separate_study(
        source, out, field_strength_t=field_strength,
        precession_clockwise=None if precession is None else precession == "clockwise",
        mode="magnitude" if magnitude else "complex", method=method,  # type: ignore[arg-type]
    )
    emit(summary, as_json=as_json, text="\n".join(summary["files"].values()))
    if not as_json:
        say(f"separated {summary['source']} ({len(summary['echo_times_s'])} echoes, "
            f"{summary['field_strength_t']:g} T, {summary['method']}) into {out}")

# [segment commands]


@app.command()
def train(
    datasets: Annotated[
        list[Path] | None, typer.Argument(help="DATASET folders/lists, then OUT.")
    ] = None,
    channels: Annotated[str, typer.Option(help="Input channels.")] = "water,fat,ff,r2star",
    config: Annotated[str, typer.Option(help="default, reference, context, fine, wide, coarse.")]
    = "default",
    epochs: Annotated[int, typer.Option(help="Epochs of --samples slices.")] = 60,
    samples: Annotated[int, typer.Option(help="Training slices per epoch.")] = 512,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same model).")] = 0,
    minutes: Annotated[float | None, typer.Option(
        help="Stop training after this many minutes (default: no limit).", show_default=False)
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle).")] = 3e-3,
    test: Annotated[list[Path] | None, typer.Option(help="Held-out dataset to score.")] = None,
    sacrum: Annotated[bool | None, typer.Option(
        "--sacrum/--no-sacrum", help="Sacrum class (default: when a subject has label 26).",
        show_default=False)] = None,
    ribs: Annotated[bool | None, typer.Option(
        "--ribs/--no-ribs", help="Rib class, the T12 cue (default: when a subject has "
        "ribs.nii.gz).", show_default=False)] = None,
    init: Annotated[Path | None, typer.Option(help="Fine-tune from this best.pt.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Go on from OUT/checkpoint.pt.")] = False,
    annotated: Annotated[bool, typer.Option(help="Use annotated_slices.json.")] = True,
    fold: Annotated[int, typer.Option(
        help="Validation fold 0-4: every 5th subject from this index (2: the shipped split)."
    )] = 2,
    keep: Annotated[str, typer.Option(
        help="Weights to export: last (the last epoch's; the validation subjects stay held "
        "out) or best (the best validation Dice, chosen on the validation subjects)."
    )] = "last",
    fov_cut: Annotated[float, typer.Option(
        "--fov-cut", help="Share of training slices whose field of view is cut inside the "
        "lower or upper spine (sacrum or T12 out of view).")] = 0.0,
    dark_discs: Annotated[float, typer.Option(
        "--dark-discs", help="Share of training slices whose discs lose their water signal "
        "(degenerated discs).")] = 0.0,
    revalidate: Annotated[Path | None, typer.Option(
        "--revalidate", help="Recompute MODEL.onnx's card figures (DATASETs: as recorded)."
    )] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train, validate, export an ONNX model and its card to OUT.

    Example: vertebrafat train ../shared/data/myosegmentum work-data/phantom_train runs/m1
    """
    from vertebrafat.train.augment import AugmentConfig
    from vertebrafat.train.loop import KEEP, TrainOptions
    from vertebrafat.train.recipe import revalidate_card, train_model
    from vertebrafat.workflows.display import validation_table

    datasets = datasets or []
    if revalidate is not None:
        card = revalidate_card(revalidate, datasets, test_datasets=test or [],
                               annotated=annotated)
        emit(card, as_json=as_json, tables=[validation_table(
            card["validation"], title=f"Revalidated {revalidate}")])
        return
    if len(datasets) < 2:
        raise typer.BadParameter("give at least one DATASET and OUT")
    if keep not in KEEP:
        raise InputError(f"--keep {keep}: must be one of {', '.join(KEEP)}")
    for flag, share in (("--fov-cut", fov_cut), ("--dark-discs", dark_discs)):
        if not 0.0 <= share <= 1.0:
            raise InputError(f"{flag} {share:g}: must be a share from 0 to 1")
    opts = TrainOptions(epochs=epochs, seed=seed, samples_per_epoch=samples,
                        time_limit_s=math.inf if minutes is None else minutes * 60,
                        learning_rate=lr, keep=keep,
                        augment=AugmentConfig(p_fov_cut=fov_cut, p_dark_discs=dark_discs))
    card = train_model(datasets[:-1], datasets[-1], config=config, channels=channels.split(","),
                       options=opts, test_datasets=test or [], resume=resume, sacrum=sacrum,
                       ribs=ribs, init=init, annotated=annotated, progress=not as_json,
                       fold=fold)
    emit(card, as_json=as_json, tables=[validation_table(
        card["validation"], title=f"Validation of {datasets[-1] / card['name']}.onnx")])

# [measure commands]

ErosionOpt = Annotated[
    float, typer.Option("--erosion-mm", help="In-plane erosion (mm) keeping cortex out.")
]
SlicesOpt = Annotated[str, typer.Option("--slices", help="'all' or 'midN' (N central slices).")]


@app.command()
def measure(
    ff: Annotated[Path, typer.Argument(help="Fat-fraction NIfTI (0-1, 0-100 or 0-1000).")],
    labels: Annotated[Path, typer.Argument(help="VerSe label map NIfTI on the same grid.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the table (.csv/.json).")] = None,
    erosion_mm: ErosionOpt = DEFAULT_EROSION_MM,
    slices: SlicesOpt = "all",
    ff_scale: FFScaleStudyOpt = None,
    subject: Annotated[str | None, typer.Option(
        help="Subject id in the table (default: study.json beside FF, else FF's folder name).",
        show_default=False)] = None,
    scan: Annotated[str | None, typer.Option(
        help="Scan id in the table (default: study.json beside FF, else 1).",
        show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-level BMF table from any label map and FF map.

    The label map may be manual, corrected or automatic; it must share the FF map's grid.

    Example: vertebrafat measure ff.nii.gz labels.nii.gz --out bmf.csv --slices mid5
    """
    from vertebrafat.io.labelmap import load_measure_inputs, measure_identity
    from vertebrafat.io.table import save_table, table_to_json
    from vertebrafat.measure import bmf_table
    from vertebrafat.workflows.display import measurement_table

    ff_pct, lab, affine = load_measure_inputs(ff, labels, ff_scale=ff_scale)
    found_subject, found_scan = measure_identity(ff)
    rows = bmf_table(ff_pct, lab, affine=affine, erosion_mm=erosion_mm, slices=slices,
                     subject=found_subject if subject is None else subject,
                     scan=found_scan if scan is None else scan)
    if out is not None:
        save_table(rows, out)
    emit(json.loads(table_to_json(rows)), as_json=as_json, tables=[measurement_table(rows)])
    if out is not None and not as_json:
        say(f"wrote {out}")


@app.command()
def segment(
    paths: Annotated[list[Path] | None, typer.Argument(
        metavar="[STUDY] OUT", show_default=False,
        help="STUDY (DICOM folder, NIfTI folder or NIfTI file) and OUT (output folder, "
        "created; all files or none); only OUT when --water gives the study.")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model .onnx (default: shipped).")]
    = None,
    erosion_mm: ErosionOpt = DEFAULT_EROSION_MM,
    slices: SlicesOpt = "all",
    series: SeriesOpt = None,
    ff_scale: FFScaleStudyOpt = None,
    allow_orientation: OrientationOpt = False,
    water: RolePathOpt = None,
    fat: RolePathOpt = None,
    ff: RolePathOpt = None,
    r2star: RolePathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Segment one study: label maps, BMF table, QC picture.

    STUDY may also be multi-echo echoes (an ISMRM .mat with voxelSize, a phantom echoes.npz,
    per-echo NIfTI files): they are separated first with the defaults of 'separate'.

    Writes labels.nii.gz, probability.nii.gz, seg.dcm (DICOM input), bmf.csv, bmf.json,
    qc.png and label tables into OUT. The BMF table goes to stdout, the files written to
    stderr.

    Example: vertebrafat segment /data/sub01/dicom out/sub01 --slices mid5

    Example: vertebrafat segment --water w.nii.gz --fat f.nii.gz out/sub01
    """
    from vertebrafat.segmentation.inference import predict
    from vertebrafat.workflows.loading import load_model, load_study
    from vertebrafat.workflows.preload import preload

    study, out = study_and_out(paths or [], water=water, others=(fat, ff, r2star))
    kwargs = study_kwargs(series, ff_scale, allow_orientation, water, fat, ff, r2star)
    image = load_study(study, **kwargs)
    net = load_model(None if model is None else str(model))
    # scipy.ndimage and what is built on it load while the network runs (GIL released); started
    # before the preprocessing, the import fought it for the GIL (paired -0.04 to -0.08 s)
    later = ["vertebrafat.workflows.study", "vertebrafat.workflows.outputs",
             "vertebrafat.io.seg", "vertebrafat.io.table", "vertebrafat.workflows.display"]
    seg = predict(net, image, on_network_start=lambda: preload(later))
    from vertebrafat.io.table import table_to_json
    from vertebrafat.workflows.display import measurement_table
    from vertebrafat.workflows.outputs import write_study_outputs
    from vertebrafat.workflows.study import analyse_study

    result = analyse_study(image, lambda _: seg, erosion_mm=erosion_mm, slices=slices)
    written = write_study_outputs(result, out)
    emit(json.loads(table_to_json(result.table)), as_json=as_json,
         tables=[measurement_table(result.table)])
    if not as_json:
        say("wrote " + " ".join(str(p) for p in written.values()))


def study_and_out(
    paths: Sequence[Path], *, water: Path | None, others: Sequence[Path | None]
) -> tuple[Path | None, Path]:
    """``segment``'s positionals: STUDY OUT, or OUT alone when ``--water`` names the study.

    Raises
    ------
    InputError
        When the count does not fit, or one path comes with --fat/--ff/--r2star but no
        --water (it could be STUDY with OUT missing, or OUT with --water missing).
    """
    usage = "give STUDY OUT, or --water FILE [--fat FILE ...] OUT"
    if len(paths) == 2:
        return paths[0], paths[1]
    if len(paths) == 1 and water is not None:
        return None, paths[0]
    if len(paths) == 1 and any(p is not None for p in others):
        raise InputError(f"segment: ambiguous: {paths[0]} is either STUDY (then OUT is "
                         f"missing) or OUT (then --water is missing); {usage}")
    if len(paths) == 1:
        raise InputError(f"segment: OUT is missing after {paths[0]}; {usage}")
    raise InputError(f"segment: {len(paths)} paths given; {usage}")

# [validation commands]


@app.command()
def evaluate(
    reference: Annotated[Path, typer.Option("--reference", help="Label map or folder.")],
    prediction: Annotated[Path, typer.Option("--prediction", help="Label/probability map(s).")],
    slices: Annotated[str, typer.Option(help="'all', 'annotated' or 'midN'.")] = "all",
    plots: Annotated[Path | None, typer.Option("--plots", help="Write roc.png, pr.png here.")]
    = None,
    reference_name: Annotated[str, typer.Option(help="File read in reference study folders.")]
    = "labels.nii.gz",
    prediction_name: Annotated[str, typer.Option(help="File read in prediction study folders.")]
    = "labels.nii.gz",
    as_json: JsonOpt = False,
) -> None:
    """Segmentation metrics against a reference, pixel ROC/PR.

    Overall, per level and per subject; the ROC AUC with its DeLong 95 % CI.

    Example: vertebrafat evaluate --reference manual/ --prediction auto/ --plots figs --json
    """
    from vertebrafat.workflows.display import evaluation_tables
    from vertebrafat.workflows.evaluate import evaluate_maps

    with long_progress("evaluate", quiet=as_json) as progress:
        r: dict[str, Any] = evaluate_maps(reference, prediction, slices=slices, plots=plots,
                                          reference_name=reference_name,
                                          prediction_name=prediction_name,
                                          on_total=progress.start,
                                          on_subject=lambda name: progress.advance())
    emit(r, as_json=as_json, tables=evaluation_tables(r))
    if r.get("plots") and not as_json:
        say("wrote " + " ".join(r["plots"]))


@app.command()
def agreement(
    table_a: Annotated[Path, typer.Argument(help="Measurement table A (e.g. automatic).")],
    table_b: Annotated[Path, typer.Argument(help="Measurement table B (e.g. manual).")],
    column: Annotated[str, typer.Option(help="Column to compare.")] = "ff_mean",
    plot: Annotated[Path | None, typer.Option("--plot", help="Pooled PNG (+ FILE_L1.png...).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Bland-Altman agreement of two measurement tables.

    Rows are paired by (subject, scan, level); differences are A - B (the first table minus
    the second). Each table needs the columns subject, scan, level and the --column (ff_mean
    by default); no other column is used, so the rest of the schema may be absent.

    Example: vertebrafat agreement auto.csv manual.csv --plot ba.png --json
    """
    from vertebrafat.io.table import load_table
    from vertebrafat.stats.agreement import agreement as run_agreement
    from vertebrafat.stats.agreement import pair_rows
    from vertebrafat.workflows.display import agreement_tables, unit_of
    from vertebrafat.workflows.evaluate import save_agreement_plots

    rows_a, rows_b = (load_table(t, required=(*KEY_COLUMNS, column)) for t in (table_a, table_b))
    r: dict[str, Any] = run_agreement(rows_a, rows_b, column=column)
    names = table_names(table_a, table_b)
    if plot is not None:
        p = pair_rows(rows_a, rows_b, column=column)
        r["plots"] = save_agreement_plots(p.a, p.b, [k[2] for k in p.keys], plot, names=names,
                                          unit=unit_of(column))
    emit(r, as_json=as_json, tables=agreement_tables(r, name_a=names[0], name_b=names[1]))
    if plot is not None and not as_json:
        say("wrote " + " ".join(str(p) for p in r["plots"]))


def table_names(a: Path, b: Path) -> tuple[str, str]:
    """Short names of two tables for axes and titles: their stems, with the parent folder
    when the stems are the same (``auto/bmf`` vs ``manual/bmf``)."""
    if a.stem != b.stem:
        return a.stem, b.stem
    return f"{a.parent.name}/{a.stem}", f"{b.parent.name}/{b.stem}"


@app.command()
def repeatability(
    table: Annotated[Path, typer.Argument(help="Measurement table with >= 2 scans per level.")],
    column: Annotated[str, typer.Option(help="Column to analyse.")] = "ff_mean",
    as_json: JsonOpt = False,
) -> None:
    """Test-retest precision error, ICCs with 95 % CIs.

    Precision error (RMS-SD, RMS-CV, LSC), every ICC with its 95 % CI, and a linear mixed
    model, over all levels and per level.

    The table needs the columns subject, scan, level and the --column (ff_mean by default);
    no other column is used, so the rest of the schema may be absent. Rows of one subject
    and level with different scan ids are the repeated measurements.

    Example: vertebrafat repeatability rescans.csv --json
    """
    from vertebrafat.io.table import load_table
    from vertebrafat.stats.repeatability import repeatability as run_repeatability
    from vertebrafat.workflows.display import repeatability_tables

    rows = load_table(table, required=(*KEY_COLUMNS, column))
    r: dict[str, Any] = run_repeatability(rows, column=column)
    emit(r, as_json=as_json, tables=repeatability_tables(r))

# [cohort commands]


@app.command()
def demo(
    out: Annotated[Path, typer.Argument(help="Output folder.")] = Path("demo-out"),
    subjects: Annotated[int, typer.Option(help="Phantom subjects (each scanned twice).")] = 3,
    seed: Annotated[int, typer.Option(help="Phantom seed.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """The whole pipeline on a phantom cohort, offline.

    Phantom cohort -> segment -> measure -> validate against truth -> report.

    Example: vertebrafat demo demo-out
    """
    from vertebrafat.workflows.demo import run_demo

    summary = run_demo(out, subjects=subjects, seed=seed,
                       progress=(lambda msg: None) if as_json else say)
    emit(summary, as_json=as_json, text=(out / "report.md").read_text().rstrip())
    if not as_json:
        say(f"wrote {out}/report.md, {out}/results/")


@app.command()
def reproduce(
    out: Annotated[Path, typer.Argument(help="Output folder for report.md/html, PNGs, JSON.")],
    cohort_dir: Annotated[
        Path | None, typer.Option("--cohort", help="Rated cohort (default: phantom).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Phantom seed.")] = 2020,
    scale: Annotated[float, typer.Option(
        help="Share of the study's cohort size to simulate, 0 < SCALE <= 1.")] = 1.0,
    model: Annotated[Path | None, typer.Option("--model", help="Model .onnx (default: shipped).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Reproduce the reference study's tables and figures.

    Table 2, Figure 3, Supp. Figures 1-2 and Supp. Table 2 of Zhou et al. 2020.

    The tables go to stdout; report.md, report.html, results.json and the figures to OUT.

    Example: vertebrafat reproduce repro-out
    """
    from vertebrafat.segmentation.inference import predict
    from vertebrafat.workflows.loading import load_model
    from vertebrafat.workflows.report import (
        counts_line,
        load_rated_cohort,
        report_tables,
        save_reproduction,
    )
    from vertebrafat.workflows.reproduce import reproduce as run_reproduce
    from vertebrafat.workflows.reproduce import study_shaped_cohort

    studies = (load_rated_cohort(cohort_dir) if cohort_dir is not None
               else study_shaped_cohort(seed=seed, scale=scale))
    net = load_model(None if model is None else str(model))
    with long_progress("reproduce", quiet=as_json) as progress:
        progress.start(len(studies))
        rep = run_reproduce(studies, lambda im: predict(net, im),
                            progress=lambda n: progress.advance())
    source = f"cohort {cohort_dir}" if cohort_dir else f"phantom (seed {seed}, scale {scale:g})"
    context = [f"Data: {source}. Model: {net.card.name} ({net.source}).",
               "Published values are those of Zhou et al., Front. Endocrinol. 11:612 (2020)."]
    files = save_reproduction(rep, out, title="Reproduction of Zhou et al. 2020", context=context)
    emit({k: str(v) for k, v in files.items()}, as_json=as_json, tables=report_tables(rep),
         text="\n".join([*context, counts_line(rep), ""]))
    if not as_json:
        say("wrote " + " ".join(str(v) for v in files.values()))


@app.command()
def cohort(
    root: Annotated[Path, typer.Argument(help="Folder of studies (DICOM and NIfTI, any depth).")],
    out: Annotated[Path, typer.Argument(help="Output folder: one sub-folder per study.")],
    model: Annotated[Path | None, typer.Option("--model", help="Model .onnx (default: shipped).")]
    = None,
    workers: Annotated[int, typer.Option(help="Local Dask worker processes; 0 = in this process.")]
    = 2,
    scheduler: Annotated[str | None, typer.Option(
        help="Address of a running Dask scheduler (tcp://HOST:8786) instead of local workers.")
    ] = None,
    erosion_mm: ErosionOpt = DEFAULT_EROSION_MM,
    slices: SlicesOpt = "all",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List the studies found and what would be done; write nothing.")
    ] = False,
    log_every: Annotated[int, typer.Option(
        "--log-every", help="Without a terminal: a progress line every N studies ...")] = 10,
    log_seconds: Annotated[float, typer.Option(
        "--log-seconds", help="... or every T seconds, whichever comes first.")] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Segment many studies (resumable, on Dask); OUT/report.html to review them.

    A study is a folder that segment reads: DICOM files of one study (any names, series in
    sub-folders or not) or a NIfTI folder. Each study's outputs record the settings and inputs
    that made them: a rerun measures again the studies whose model, erosion, slices, version or
    input files differ, skips the others and says how many of each. One failing study never
    stops the others; Ctrl-C stops cleanly (exit 130) and a rerun resumes.

    Example: vertebrafat cohort /data/cohort out/cohort --dry-run

    Example: vertebrafat cohort /data/cohort out/cohort --workers 4

    Example: vertebrafat cohort /data/cohort out/cohort --scheduler tcp://10.0.0.5:8786
    """
    from vertebrafat.core.errors import Interrupted
    from vertebrafat.workflows.cohort import find_plan, run_cohort
    from vertebrafat.workflows.display import cohort_plan_table, cohort_summary, cohort_table

    settings: dict[str, Any] = {"model_path": None if model is None else str(model),
                                "erosion_mm": erosion_mm, "slices": slices}
    if dry_run:
        plan = find_plan(root, out, **settings)
        emit(plan.rows(), as_json=as_json, tables=[cohort_plan_table(plan)])
        return
    with long_progress("cohort", quiet=as_json, every=log_every, seconds=log_seconds) as bar:
        try:
            run = run_cohort(
                root, out, workers=workers, scheduler=scheduler, **settings,
                on_plan=lambda plan: bar.start(len(plan.jobs()), notes=plan.notes()),
                on_outcome=lambda o: bar.advance(failed=o.status == "error", note=o.note()))
        except Interrupted as exc:
            say(f"interrupted: {exc}")
            raise typer.Exit(130) from None
    found = [o.__dict__ for o in run.outcomes]
    emit(found, as_json=as_json, tables=[cohort_table(found)])
    if not as_json:
        say(cohort_summary(run.counts(), run.seconds, [str(f) for f in run.files.values()]))


def without_debug(args: Sequence[str]) -> tuple[list[str], bool]:
    """``args`` without ``--debug`` (anywhere before a ``--``) and whether it was there."""
    end = args.index("--") if "--" in args else len(args)
    kept = [a for a in args[:end] if a != "--debug"] + list(args[end:])
    return kept, len(kept) < len(args)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    args, debug = without_debug(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=not debug) as recorded:
            if recorded is not None:
                caught = recorded
                warnings.simplefilter("default")
            command.main(args=args, prog_name="vertebrafat", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 0:
            _print_warnings(caught)
        return code
    except VertebrafatError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)  # the one line: what led to it is in it
        return 2
    except OSError as exc:  # the file system refused something no writer above named
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        return 2
    _print_warnings(caught)
    return 0


def _print_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    """A finished run's warnings (files skipped, ...), one ``warning:`` line each, after its
    results; libraries' deprecation and future-change notes are not for the user."""
    seen = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, (DeprecationWarning, FutureWarning)) or text in seen:
            continue
        seen.add(text)
        typer.echo(f"warning: {text}", err=True)


def run() -> None:
    """Console script: exit with :func:`main`'s code, skipping the interpreter's teardown
    where nothing is left for it to do (see :func:`fast_exit`)."""
    code = main()
    fast_exit(code)
    raise SystemExit(code)


def fast_exit(code: int) -> None:
    """End the process now with ``code`` when a normal exit would only tear modules down.

    Python's finalisation frees every module and object one by one: 0.15 s after a ``segment``
    (scipy, ONNX Runtime, pydicom and a few hundred MB of arrays) against 0.01 s for
    ``os._exit``, the largest single step of a cold run's own time (issue 16). Every output
    file is closed (and renamed into place) before :func:`main` returns, so only the standard
    streams need flushing. Left to the normal exit: a run whose streams cannot be flushed (a
    closed pipe: Python reports it), one with other non-daemon threads still running, and one
    that imported Dask (a cohort's cluster and its atexit hooks).
    """
    if "distributed" in sys.modules or any(
        t.is_alive() and not t.daemon and t is not threading.main_thread()
        for t in threading.enumerate()
    ):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or stream: the normal exit reports it
        return
    os._exit(code)


if __name__ == "__main__":
    run()
