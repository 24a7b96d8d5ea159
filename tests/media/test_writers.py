"""An output's name picks its writer: a video file or a folder of PNG frames, with one interface, each keeping the
record of what made it; a writer given no frame leaves nothing behind."""
from fractions import Fraction

import numpy as np
import pytest

from memdeblur.media.writers import FrameFolderWriter, VideoFileWriter, open_writer, read_record
from memdeblur.utils.errors import DataError


@pytest.mark.parametrize('name, kind', [('out.mp4', VideoFileWriter), ('out.mkv', VideoFileWriter),
                                        ('frames', FrameFolderWriter)])
def test_the_output_name_picks_the_writer_and_the_record_reads_back(tmp_path, name, kind):
    path = str(tmp_path / name)
    with open_writer(path, Fraction(25), record='{"made": "here"}') as writer:
        assert isinstance(writer, kind)
        for shade in range(3):
            writer.write(np.full((16, 16, 3), shade, np.uint8))
    assert writer.count == 3 and read_record(path) == '{"made": "here"}'
    with open_writer(path, Fraction(25), overwrite=True) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
    assert read_record(path) is None


@pytest.mark.parametrize('name', ['out.mp4', 'frames'])
def test_a_writer_given_no_frame_leaves_nothing(tmp_path, name):
    with pytest.raises(DataError, match='No frame was written'):
        with open_writer(str(tmp_path / name), Fraction(25)):
            pass
    assert list(tmp_path.iterdir()) == []
