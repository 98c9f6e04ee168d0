"""stylecam.export: ONNX export of trained bundles (FP16/INT8 variants and TensorRT engines plug in here)."""
