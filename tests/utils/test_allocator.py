"""The tools' malloc setting: freed memory is reused instead of being faulted in again."""
import platform
import subprocess
import sys
import textwrap

import pytest

ALLOCATION_CYCLES = textwrap.dedent("""
    import resource, torch
    from memdeblur.utils.allocator import retain_freed_memory
    assert retain_freed_memory()

    def cycle():  # the feature maps of a frame: allocated, filled, freed
        maps = [torch.ones(5 << 20) for _ in range(5)]
        del maps

    cycle()
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        cycle()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 10)
""")


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='a setting of glibc malloc')
def test_freed_feature_maps_are_reused_without_page_faults():
    """100 MiB (25600 pages) allocated and freed per cycle: with glibc's defaults ~21000 pages are faulted in
    again every cycle (glibc 2.36), with the retained heap ~500."""
    out = subprocess.run([sys.executable, '-c', ALLOCATION_CYCLES], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 0.1 * 25600
