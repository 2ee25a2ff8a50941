"""HC Studio's logic without a GUI: frame loading, segmentation (ONNX), ellipse fitting,
biometry, gestational age, export and the `hc-studio` command. Never imports Qt; torch only
inside `core.training`."""
