"""Digital water-fat phantom of the lumbar spine: synthetic scans with ground truth.

Pure numpy; never touches files (see :mod:`vertebrafat.workflows.phantom_cohort`).
"""

from vertebrafat.phantom.acquisition import Acquisition
from vertebrafat.phantom.marrow import Lesion, Marrow
from vertebrafat.phantom.subject import (
    PhantomConfig,
    PhantomStudy,
    generate_cohort,
    generate_subject,
    subject_id,
)

__all__ = [
    "Acquisition",
    "Lesion",
    "Marrow",
    "PhantomConfig",
    "PhantomStudy",
    "generate_cohort",
    "generate_subject",
    "subject_id",
]
