"""The command line: a thin Typer layer, one verb per stage, each a call of the public API.

Heavy imports (onnxruntime, torch, dask, matplotlib) happen inside the command that needs them,
so ``vertebrafat --help`` starts fast. Every :class:`~vertebrafat.VertebrafatError` becomes
one line on stderr and exit code 2; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from vertebrafat.core.errors import VertebrafatError
from vertebrafat.core.schema import DEFAULT_EROSION_MM

app = typer.Typer(
    name="vertebrafat",
    help="Lumbar vertebral bone marrow fat fraction from water-fat MRI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """Lumbar vertebral bone marrow fat fraction (BMF) from water-fat MRI.

    Example: vertebrafat segment /data/sub01/dicom out/sub01
    """


def emit(obj: Any, *, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON (``--json``) or ``text`` for people."""
    if as_json:
        typer.echo(json.dumps(obj, indent=2, default=_json_default))
    elif text is not None:
        typer.echo(text)


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
    """What was found in a study: series, roles, geometry, spacing, FF scale, vendor.

    Example: vertebrafat info /data/sub01/dicom --json
    """
    from vertebrafat.io.study import describe_study
    from vertebrafat.workflows.loading import load_study

    kwargs = study_kwargs(series, ff_scale, allow_orientation, water, fat, ff, r2star)
    d = describe_study(load_study(study, **kwargs))
    lines = [f"{k}: {d[k]}" for k in ("source", "format", "vendor", "subject", "channels",
                                       "shape", "spacing_mm", "orientation", "ff_scale")]
    lines += [f"  {'series ' + str(s['number']) if s['number'] is not None else s['source']}: "
              f"{s['role']:<9} {s['description']} ({s['slices']} slices)"
              for s in d["series"]]  # type: ignore[attr-defined]
    emit(d, as_json=as_json, text="\n".join(lines + [f"note: {n}" for n in d["notes"]]))  # type: ignore[attr-defined]

# [phantom commands]


@app.command()
def phantom(
    out: Annotated[Path, typer.Argument(help="Output folder (one sub-folder per scan).")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 10,
    seed: Annotated[int, typer.Option(help="Cohort seed (same seed -> same bytes).")] = 0,
    rescans: Annotated[bool, typer.Option("--rescans", help="Also a repositioned scan 2.")] = False,
    fmt: Annotated[list[str] | None, typer.Option(
        "--format", help="nifti, dicom-ge, dicom-siemens, dicom-philips or all; repeatable.")
    ] = None,
    echoes: Annotated[bool, typer.Option("--echoes", help="Also write complex echoes.")] = False,
    preview: Annotated[bool, typer.Option("--preview", help="preview.png per scan.")] = False,
    workers: Annotated[int, typer.Option(help="Processes (output does not depend on it).")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic water-fat spine cohort with truth, two raters and optional rescans.

    Example: vertebrafat phantom phantom-out --subjects 5 --seed 1 --rescans --format all
    """
    from rich.progress import Progress

    from vertebrafat.workflows.phantom_cohort import write_phantom_cohort

    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("phantom", total=subjects * (2 if rescans else 1))
        folders = write_phantom_cohort(
            out, n_subjects=subjects, seed=seed, rescans=rescans, formats=fmt or ["nifti"],
            echoes=echoes, preview=preview, workers=workers,
            progress=lambda name: bar.advance(task))
    emit([str(f) for f in folders], as_json=as_json,
         text="\n".join(str(f) for f in folders) + f"\n{len(folders)} scans written to {out}")

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
    minutes: Annotated[float, typer.Option(help="Stop training after this long.")] = 1e9,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle).")] = 3e-3,
    test: Annotated[list[Path] | None, typer.Option(help="Held-out dataset to score.")] = None,
    sacrum: Annotated[bool | None, typer.Option("--sacrum/--no-sacrum")] = None,
    ribs: Annotated[
        bool | None, typer.Option("--ribs/--no-ribs", help="Rib class (the T12 cue).")
    ] = None,
    init: Annotated[Path | None, typer.Option(help="Fine-tune from this best.pt.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Go on from OUT/checkpoint.pt.")] = False,
    annotated: Annotated[bool, typer.Option(help="Use annotated_slices.json.")] = True,
    fold: Annotated[int, typer.Option(
        help="Validation fold 0-4: every 5th subject from this index (2: the shipped split)."
    )] = 2,
    revalidate: Annotated[Path | None, typer.Option(
        "--revalidate", help="Recompute MODEL.onnx's card figures (DATASETs: as recorded)."
    )] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train, validate and export an ONNX model + model card into OUT.

    Example: vertebrafat train ../shared/data/myosegmentum work-data/phantom_train runs/m1
    """
    from vertebrafat.train.loop import TrainOptions
    from vertebrafat.train.recipe import revalidate_card, train_model

    datasets = datasets or []
    if revalidate is not None:
        card = revalidate_card(revalidate, datasets, test_datasets=test or [],
                               annotated=annotated)
        summary = json.dumps(card["validation"])[:300]
        emit(card, as_json=as_json, text=f"revalidated {revalidate}: {summary}")
        return
    if len(datasets) < 2:
        raise typer.BadParameter("give at least one DATASET and OUT")
    opts = TrainOptions(epochs=epochs, seed=seed, samples_per_epoch=samples,
                        time_limit_s=minutes * 60, learning_rate=lr)
    card = train_model(datasets[:-1], datasets[-1], config=config, channels=channels.split(","),
                       options=opts, test_datasets=test or [], resume=resume, sacrum=sacrum,
                       ribs=ribs, init=init, annotated=annotated, progress=not as_json,
                       fold=fold)
    summary = json.dumps(card["validation"])[:300]
    emit(card, as_json=as_json, text=f"wrote {datasets[-1] / card['name']}.onnx: {summary}")

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
    subject: Annotated[str, typer.Option(help="Subject id written in the table.")] = "",
    scan: Annotated[str, typer.Option(help="Scan id written in the table.")] = "1",
    as_json: JsonOpt = False,
) -> None:
    """Per-level BMF table from any label map (manual, corrected or automatic).

    Example: vertebrafat measure ff.nii.gz labels.nii.gz --out bmf.csv --slices mid5
    """
    from vertebrafat.io.labelmap import load_measure_inputs
    from vertebrafat.io.table import save_table, table_to_csv, table_to_json
    from vertebrafat.measure import bmf_table

    ff_pct, lab, affine = load_measure_inputs(ff, labels, ff_scale=ff_scale)
    rows = bmf_table(ff_pct, lab, affine=affine, erosion_mm=erosion_mm, slices=slices,
                     subject=subject, scan=scan)
    if out is not None:
        save_table(rows, out)
    emit(json.loads(table_to_json(rows)), as_json=as_json, text=table_to_csv(rows).rstrip())


@app.command()
def segment(
    study: Annotated[Path, typer.Argument(help="DICOM folder, NIfTI folder or NIfTI file.")],
    out: Annotated[Path, typer.Argument(help="Output folder (created; all files or none).")],
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
    """One study -> labels.nii.gz, probability.nii.gz, seg.dcm (DICOM), bmf.csv/json, qc.png.

    Example: vertebrafat segment /data/sub01/dicom out/sub01 --slices mid5
    """
    from vertebrafat.io.table import table_to_csv, table_to_json
    from vertebrafat.segmentation.inference import predict
    from vertebrafat.workflows.loading import load_model, load_study
    from vertebrafat.workflows.outputs import write_study_outputs
    from vertebrafat.workflows.study import analyse_study

    kwargs = study_kwargs(series, ff_scale, allow_orientation, water, fat, ff, r2star)
    image = load_study(study, **kwargs)
    net = load_model(None if model is None else str(model))
    result = analyse_study(image, lambda im: predict(net, im), erosion_mm=erosion_mm,
                           slices=slices)
    paths = write_study_outputs(result, out)
    text = table_to_csv(result.table).rstrip() + "\n" + "\n".join(str(p) for p in paths.values())
    emit(json.loads(table_to_json(result.table)), as_json=as_json, text=text)

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
    """Segmentation metrics (overall, per level, per subject), pixel ROC/PR with DeLong CI.

    Example: vertebrafat evaluate --reference manual/ --prediction auto/ --plots figs --json
    """
    from vertebrafat.workflows.evaluate import evaluate_maps

    r: dict[str, Any] = evaluate_maps(reference, prediction, slices=slices, plots=plots,
                                      reference_name=reference_name,
                                      prediction_name=prediction_name)
    text = "\n".join([f"{k}: {r[k]}" for k in ("n_subjects", "dice", "iou", "sensitivity",
                      "specificity", "kappa", "hd95_mm", "assd_mm", "roc_auc", "roc_auc_ci",
                      "pr_auc", "unpaired")]
                     + [f"{lv}: dice {b['dice']}" for lv, b in r["per_level"].items()])
    emit(r, as_json=as_json, text=text)


@app.command()
def agreement(
    table_a: Annotated[Path, typer.Argument(help="Measurement table A (e.g. automatic).")],
    table_b: Annotated[Path, typer.Argument(help="Measurement table B (e.g. manual).")],
    column: Annotated[str, typer.Option(help="Column to compare.")] = "ff_mean",
    plot: Annotated[Path | None, typer.Option("--plot", help="Pooled PNG (+ FILE_L1.png...).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Bland-Altman agreement of two measurement tables paired by (subject, scan, level).

    Example: vertebrafat agreement auto.csv manual.csv --plot ba.png --json
    """
    from vertebrafat.io.table import load_table
    from vertebrafat.stats.agreement import agreement as run_agreement
    from vertebrafat.stats.agreement import pair_rows
    from vertebrafat.workflows.evaluate import save_agreement_plots

    rows_a, rows_b = load_table(table_a), load_table(table_b)
    r: dict[str, Any] = run_agreement(rows_a, rows_b, column=column)
    if plot is not None:
        p = pair_rows(rows_a, rows_b, column=column)
        r["plots"] = save_agreement_plots(p.a, p.b, [k[2] for k in p.keys], plot)
    text = "\n".join(f"{k}: {r[k]}" for k in ("n", "bias", "bias_ci", "sd", "loa", "loa_ci",
                                               "pct_outside", "slope", "slope_p", "unpaired"))
    emit(r, as_json=as_json, text=text)


@app.command()
def repeatability(
    table: Annotated[Path, typer.Argument(help="Measurement table with >= 2 scans per level.")],
    column: Annotated[str, typer.Option(help="Column to analyse.")] = "ff_mean",
    as_json: JsonOpt = False,
) -> None:
    """Test-retest precision error (RMS-SD, RMS-CV, LSC), ICCs with CIs, mixed model.

    Example: vertebrafat repeatability rescans.csv --json
    """
    from vertebrafat.io.table import load_table
    from vertebrafat.stats.repeatability import repeatability as run_repeatability

    r: dict[str, Any] = run_repeatability(load_table(table), column=column)
    text = "\n".join(f"{k}: {r[k]}" for k in ("n_subjects", "precision_error", "icc",
                                               "mixed_model"))
    emit(r, as_json=as_json, text=text)

# [cohort commands]


@app.command()
def demo(
    out: Annotated[Path, typer.Argument(help="Output folder.")] = Path("demo-out"),
    subjects: Annotated[int, typer.Option(help="Phantom subjects (each scanned twice).")] = 3,
    seed: Annotated[int, typer.Option(help="Phantom seed.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Phantom cohort -> segment -> measure -> validate against truth -> report, offline.

    Example: vertebrafat demo demo-out
    """
    from vertebrafat.workflows.demo import run_demo

    say = (lambda msg: None) if as_json else (lambda msg: typer.echo(msg, err=True))
    summary = run_demo(out, subjects=subjects, seed=seed, progress=say)
    text = (out / "report.md").read_text() + f"\nwritten: {out}/report.md, {out}/results/"
    emit(summary, as_json=as_json, text=text)


@app.command()
def reproduce(
    out: Annotated[Path, typer.Argument(help="Output folder for report.md/html, PNGs, JSON.")],
    cohort_dir: Annotated[
        Path | None, typer.Option("--cohort", help="Rated cohort (default: phantom).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Phantom seed.")] = 2020,
    scale: Annotated[float, typer.Option(help="Shrink the phantom cohort (0-1).")] = 1.0,
    model: Annotated[Path | None, typer.Option("--model", help="Model .onnx (default: shipped).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """The reference study's Table 2, Figure 3, Supp. Figures 1-2 and Supp. Table 2.

    Example: vertebrafat reproduce repro-out
    """
    from vertebrafat.segmentation.inference import predict
    from vertebrafat.workflows.loading import load_model
    from vertebrafat.workflows.report import load_rated_cohort, save_reproduction
    from vertebrafat.workflows.reproduce import reproduce as run_reproduce
    from vertebrafat.workflows.reproduce import study_shaped_cohort

    net = load_model(None if model is None else str(model))
    studies = (load_rated_cohort(cohort_dir) if cohort_dir is not None
               else study_shaped_cohort(seed=seed, scale=scale))
    rep = run_reproduce(studies, lambda im: predict(net, im))
    source = f"cohort {cohort_dir}" if cohort_dir else f"phantom (seed {seed}, scale {scale})"
    context = [f"Data: {source}. Model: {net.card.name} ({net.source}).",
               "Published values are those of Zhou et al., Front. Endocrinol. 11:612 (2020)."]
    files = save_reproduction(rep, out, title="Reproduction of Zhou et al. 2020", context=context)
    emit({k: str(v) for k, v in files.items()}, as_json=as_json,
         text=(out / "report.md").read_text())


@app.command()
def cohort(
    root: Annotated[Path, typer.Argument(help="Folder of studies (NIfTI folders / DICOM).")],
    out: Annotated[Path, typer.Argument(help="Output folder: one sub-folder per study.")],
    model: Annotated[Path | None, typer.Option("--model", help="Model .onnx (default: shipped).")]
    = None,
    workers: Annotated[int, typer.Option(help="Local Dask workers; 0 = in this process.")] = 2,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a dask.distributed scheduler.")
    ] = None,
    erosion_mm: ErosionOpt = DEFAULT_EROSION_MM,
    slices: Annotated[str, typer.Option(help="'all' or 'midN'.")] = "all",
    as_json: JsonOpt = False,
) -> None:
    """Many studies, resumable (finished studies are skipped), one bad study never stops it.

    Example: vertebrafat cohort /data/cohort out/cohort --workers 2
    """
    from rich.progress import Progress

    from vertebrafat.workflows.cohort import run_cohort

    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("studies", total=None)
        outcomes = run_cohort(
            root, out, model_path=None if model is None else str(model), workers=workers,
            scheduler=scheduler, erosion_mm=erosion_mm, slices=slices,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    text = "\n".join(f"{o.status:<7} {o.name} {o.error}" for o in outcomes)
    emit([o.__dict__ for o in outcomes], as_json=as_json, text=text)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="vertebrafat", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except VertebrafatError as exc:
        if "--debug" in args:
            raise
        typer.echo(f"error: {exc}", err=True)
        return 2
    return 0


def run() -> None:
    """Console script: exit with :func:`main`'s code."""
    raise SystemExit(main())


if __name__ == "__main__":
    run()
