"""vertebrafat: lumbar vertebral bone marrow fat fraction from water-fat MRI.

The public API, imported lazily (``import vertebrafat`` stays cheap; each name loads its module
on first use)::

    import vertebrafat as vf

    image = vf.load_study("sub01/dicom")           # DICOM or NIfTI -> WaterFatImage
    sep = vf.separate(echoes, te_s, 3.0)           # multi-echo echoes -> water, fat, PDFF, R2*, B0
    echoes = vf.load_dicom_echoes("sub01/echoes")  # multi-echo DICOM -> complex echoes
    result = vf.segment_study(image)               # segment, name L1-L5, measure, QC picture
    vf.write_study_outputs(result, "out/sub01")    # labels.nii.gz, seg.dcm, bmf.csv, qc.png

Where things live: ``core`` (errors, types, labels, the image and the table schema), ``io``
(file formats), ``segmentation``, ``levels``, ``measure``, ``stats``, ``qc``, ``phantom``,
``waterfat`` (computation on arrays), ``workflows`` (files and computation together), ``train``
(torch; optional extra), ``cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vertebrafat.core.errors import GeometryError, InputError, ModelError, VertebrafatError
from vertebrafat.core.version import __version__

# public name -> module that defines it
_API: dict[str, str] = {
    "WaterFatImage": "vertebrafat.core.image",
    "LevelMeasurement": "vertebrafat.core.schema",
    "load_study": "vertebrafat.workflows.loading",
    "describe_input": "vertebrafat.workflows.loading",
    "load_dicom_echoes": "vertebrafat.io.dicom.echoes",
    "load_model": "vertebrafat.workflows.loading",
    "segment_study": "vertebrafat.workflows.study",
    "analyse_study": "vertebrafat.workflows.study",
    "write_study_outputs": "vertebrafat.workflows.outputs",
    "run_cohort": "vertebrafat.workflows.cohort.run",
    "predict": "vertebrafat.segmentation.inference",
    "label_vertebrae": "vertebrafat.levels.labeller",
    "bmf_table": "vertebrafat.measure",
    "dice": "vertebrafat.stats.overlap",
    "evaluate_pair": "vertebrafat.stats.evaluation",
    "bland_altman": "vertebrafat.stats.agreement",
    "agreement": "vertebrafat.stats.agreement",
    "repeatability": "vertebrafat.stats.repeatability",
    "generate_subject": "vertebrafat.phantom.subject",
    "separate": "vertebrafat.waterfat.separate",
    "read_echoes": "vertebrafat.io.echoes",
    "separate_study": "vertebrafat.workflows.separate",
    "save_labels": "vertebrafat.io.nifti",
    "save_table": "vertebrafat.io.table",
    "load_table": "vertebrafat.io.table",
}

__all__ = [
    "GeometryError",
    "InputError",
    "LevelMeasurement",
    "ModelError",
    "VertebrafatError",
    "WaterFatImage",
    "__version__",
    "agreement",
    "analyse_study",
    "bland_altman",
    "bmf_table",
    "describe_input",
    "dice",
    "evaluate_pair",
    "generate_subject",
    "label_vertebrae",
    "load_dicom_echoes",
    "load_model",
    "load_study",
    "load_table",
    "predict",
    "read_echoes",
    "repeatability",
    "run_cohort",
    "save_labels",
    "save_table",
    "segment_study",
    "separate",
    "separate_study",
    "write_study_outputs",
]

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from vertebrafat.core.image import WaterFatImage
    from vertebrafat.core.schema import LevelMeasurement
    from vertebrafat.io.dicom.echoes import load_dicom_echoes
    from vertebrafat.io.echoes import read_echoes
    from vertebrafat.io.nifti import save_labels
    from vertebrafat.io.table import load_table, save_table
    from vertebrafat.levels.labeller import label_vertebrae
    from vertebrafat.measure import bmf_table
    from vertebrafat.phantom.subject import generate_subject
    from vertebrafat.segmentation.inference import predict
    from vertebrafat.stats.agreement import agreement, bland_altman
    from vertebrafat.stats.evaluation import evaluate_pair
    from vertebrafat.stats.overlap import dice
    from vertebrafat.stats.repeatability import repeatability
    from vertebrafat.waterfat.separate import separate
    from vertebrafat.workflows.cohort.run import run_cohort
    from vertebrafat.workflows.loading import describe_input, load_model, load_study
    from vertebrafat.workflows.outputs import write_study_outputs
    from vertebrafat.workflows.separate import separate_study
    from vertebrafat.workflows.study import analyse_study, segment_study


def __getattr__(name: str) -> object:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vertebrafat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
