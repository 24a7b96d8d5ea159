"""Frames and sequences are ordered as people number them (2 before 10), and holes in the numbering are found."""
from memdeblur.media.frame_names import natural_sorted, numbering_gaps


def test_natural_order_and_gap_detection_helpers():
    assert natural_sorted(['10', '2', '1', 'frame11', 'frame9']) == ['1', '2', '10', 'frame9', 'frame11']
    assert numbering_gaps(['1', '2', '3', '5', '6']) == [(3, 5)]
    assert numbering_gaps(['0', '2', '4', '6', '10']) == [(6, 10)]  # numbered every second frame
    assert numbering_gaps(['a', 'b', 'c']) == [] and numbering_gaps(['x1', 'y2', 'z3']) == []
