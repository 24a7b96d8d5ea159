"""Exporting a network: ONNX export verified against PyTorch before it is written (``onnx_export``); runtimes read
the file it writes through ``memdeblur.runtime.backends.export_file``."""
