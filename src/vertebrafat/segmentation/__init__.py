"""Segmentation with the ONNX model: channels and normalisation, resampling to the model grid,
inference, post-processing. Never imports torch."""
