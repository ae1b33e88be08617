"""The package version, recorded in DICOM SEG and model cards."""

__version__ = "0.1.0"
