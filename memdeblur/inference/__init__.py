"""Running a model on video: one ``Restorer`` (frames in, frames out) over the fast path, padding to the sizes a
network takes, windows and tiles in bounded memory, exact whole-sequence restoration and exported models (ONNX
Runtime, OpenVINO); ONNX export; whole videos in and out (``VideoDeblurrer``)."""
