"""Training (torch + MONAI-era U-Net, only imported here): dataset caching, augmentation, the
network, the loop, ONNX export and the model card. ``pip install vertebrafat[train]``."""
