"""Running a network on video: the fast path, padding to the sizes it takes, windows and tiles in bounded
memory, exact whole-sequence restoration, and whole videos in and out (``VideoDeblurrer``)."""
