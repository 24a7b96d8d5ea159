"""Reading and writing users' footage and frame files, one frame in memory at a time.

Inputs are video files (``video_files``, ``streams``, ``colour``, ``cut_files``) and folders of image files
(``images``, ``frame_folders``, laid out as ``layouts`` declares), found as sequences by ``inputs``; outputs are
written whole or not at all by ``writers``, a video encoded as ``video_encoding`` checks. The datasets
(``memdeblur.data``) read their frames through this package; it imports nothing of the datasets, the models,
inference or evaluation.
"""
