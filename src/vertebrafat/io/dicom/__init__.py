"""DICOM: reading studies (classic and enhanced multi-frame, every vendor's layout and value
mapping, multi-echo images), writing them (the phantom's vendor layouts) and DICOM SEG's
neighbours. ``read.load_dicom_study`` is the entry point of :func:`vertebrafat.io.study.
read_study` for a DICOM folder."""
