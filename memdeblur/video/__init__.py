"""The video job: videos and frame folders deblurred into files (``job``: ``VideoJob``, ``run_video_job``), one
sequence at a time (``deblurrer``), every output planned first (``run_plan``), the work shared under torchrun
(``process_share``)."""
