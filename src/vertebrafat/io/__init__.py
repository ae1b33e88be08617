"""Formats only: study reading (DICOM, NIfTI, orientation), NIfTI, DICOM and DICOM SEG writing,
measurement tables, model files and atomic writes. Imports only :mod:`vertebrafat.core`."""
