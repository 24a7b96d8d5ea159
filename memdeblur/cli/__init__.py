"""The commands: each module holds one tool's command line and ``main``; ``command_line`` what they share.

    memdeblur-video    deblur_video    python tools/deblur_video.py      memdeblur-export   export_onnx
    memdeblur-test     test            python tools/test.py              memdeblur-compare  compare
    memdeblur-train    train           python tools/train.py

``pip install`` puts the commands on the PATH (``setup.py``); ``tools/<tool>.py`` runs the same ``main`` from a
checkout. One difference: ``memdeblur-train`` and ``memdeblur-test`` write ``experiments/`` and ``results/`` in the
current folder, where ``python tools/train.py`` writes them in the checkout (BasicSR's ``root_path``). Options files
are not installed; give their path.
"""
