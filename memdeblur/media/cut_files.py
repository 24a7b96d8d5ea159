"""Telling a cut video file from a whole one by the sizes its container declares.

A download or copy that stops early leaves a file that FFmpeg reads without complaint up to the cut, and a frame
cut in two is often dropped without a word: the video just ends early. But containers declare how long their
parts are, and a file shorter than that is cut (``find_cut``):

* MP4, MOV (FFmpeg's ``mov`` family): each top-level box (``ftyp``, ``moov``, ``mdat``, ``moof``, ...) starts with
  its size;
* Matroska, WebM: the Segment element declares its size once the muxer finished the file; in a file written live
  (a Segment, and maybe Clusters, of unknown size) each block declares its own;
* AVI: each RIFF chunk (``RIFF AVI``, and the ``RIFF AVIX`` of OpenDML files past 1 GiB) starts with its size;
* MPEG transport streams (.ts, .m2ts, .mts): packets of 188 bytes (192 in M2TS, 204 with error correction); a file
  that ends inside a packet is cut.

Only a shortfall is a cut: a file that holds more than its container declares (padding, appended bytes) is not,
nor one whose sizes were never written (a recording that was stopped: unknown sizes, or zero). What follows a
container's declared parts is read only as far as it looks like more of them, so appended bytes cannot pass for a
cut. Other containers (MPEG program streams, ASF, FLV) are not checked here: their cuts show as incomplete packets
(``memdeblur.media.video_files``).
"""
import os
import struct
from dataclasses import dataclass
from typing import Optional

# Matroska's EBML element IDs (the marker bits kept), of the elements read here
EBML_HEADER, SEGMENT, SEGMENT_INFO, TIMESTAMP_SCALE, DURATION = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x2AD7B1, 0x4489
# what the elements a live file is cut in hold, by ID
MATROSKA_PARTS = {0x1F43B675: 'cluster', 0xA3: 'block', 0xA0: 'block group', 0x1C53BB6B: 'index (Cues)',
                  0x1254C367: 'tags'}
# FFmpeg's container names by file extension, for files FFmpeg cannot open (an MP4 cut before its index)
FORMATS_BY_EXTENSION = {'.mp4': 'mov', '.m4v': 'mov', '.mov': 'mov', '.mkv': 'matroska', '.webm': 'matroska',
                        '.avi': 'avi', '.ts': 'mpegts', '.m2ts': 'mpegts', '.mts': 'mpegts'}
# transport stream packet sizes and where the sync byte sits in each: plain, M2TS (a 4-byte time code first), and
# with Reed-Solomon bytes appended
TS_PACKETS, TS_SYNC, TS_SYNCED = ((188, 0), (192, 4), (204, 0)), 0x47, 5  # packets in step that find the stride


@dataclass(frozen=True)
class Cut:
    """Where a file was cut.

    Attributes:
        size (int): The file's size in bytes.
        declared (int): The size its container declares (at least; more may be lost beyond it).
        part (str): What the cut falls in, in words (its Matroska segment, an MP4 box, ...).
        seconds (float | None): The duration the container declares for the whole (Matroska), when it does.
    """

    size: int
    declared: int
    part: str
    seconds: Optional[float] = None

    def __str__(self):
        return f'the file ends at byte {self.size}, inside {self.part}, which runs to byte {self.declared}'


def find_cut(path, format_name=None):
    """Where video file ``path`` was cut short, or None when it is as long as its container declares (or its
    container is one not checked here, or declares no sizes).

    Args:
        path (str): The video file.
        format_name (str | None): FFmpeg's name of its container (``container.format.name``: ``matroska,webm``,
            ...); None: the one its extension names (``FORMATS_BY_EXTENSION``), for a file FFmpeg cannot open.
    """
    size = os.path.getsize(path)
    if format_name is None:
        format_name = FORMATS_BY_EXTENSION.get(os.path.splitext(path)[1].lower(), '')
    family = format_name.split(',')[0]
    finders = {'mov': _mov_cut, 'matroska': _matroska_cut, 'avi': _avi_cut, 'mpegts': _ts_cut}
    if family not in finders:
        return None
    with open(path, 'rb') as f:
        return finders[family](f, size)


def _mov_cut(f, size):
    """The top-level box that runs past the end of the file, if any."""
    pos = 0
    while pos + 8 <= size:
        f.seek(pos)
        header = f.read(16)
        length, kind = struct.unpack('>I4s', header[:8])
        if not all(0x20 <= byte < 0x7F for byte in kind):
            return None  # not a box: bytes after the last one
        if length == 1 and len(header) == 16:  # a 64-bit size follows the type
            length = struct.unpack('>Q', header[8:])[0]
        elif length == 0:  # the last box, running to the end of the file whatever its size
            return None
        if length < 8:
            return None
        if pos + length > size:
            return Cut(size, pos + length, f'its {kind.decode("ascii")!r} box')
        pos += length
    return None


def _read_vint(f, keep_marker):
    """An EBML variable-length integer at the file's position: (value, its length in bytes, whether all its value
    bits are set: an unknown size); None where no valid one starts (or the file ends within it)."""
    first = f.read(1)
    if not first or first[0] == 0:
        return None
    length = 9 - first[0].bit_length()
    rest = f.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = int.from_bytes(first + rest, 'big')
    bits = 7 * length
    unknown = value & ((1 << bits) - 1) == (1 << bits) - 1
    return (value if keep_marker else value & ((1 << bits) - 1)), length, unknown


def _ebml_element(f, pos):
    """(ID, where its data starts, its data size or None when unknown) of the EBML element at ``pos``; None where no
    element header starts."""
    f.seek(pos)
    element = _read_vint(f, keep_marker=True)
    if element is None or element[1] > 4:  # IDs are 1 to 4 bytes long
        return None
    data_size = _read_vint(f, keep_marker=False)
    if data_size is None:
        return None
    return element[0], f.tell(), None if data_size[2] else data_size[0]


def _matroska_cut(f, size):
    """The Segment that runs past the end of the file; in a file written live (a Segment of unknown size), the first
    of its elements that does, its Clusters of unknown size walked block by block."""
    header = _ebml_element(f, 0)
    if header is None or header[0] != EBML_HEADER or header[2] is None:
        return None
    segment = _ebml_element(f, header[1] + header[2])
    if segment is None or segment[0] != SEGMENT:
        return None
    _, start, length = segment
    if length is not None:
        return Cut(size, start + length, 'its Matroska segment', _matroska_seconds(f, start, size)) \
            if start + length > size else None
    pos = start
    while pos < size:
        element = _ebml_element(f, pos)
        if element is None:
            return None  # not an element: bytes after the last one
        kind, data, length = element
        if length is None:  # a Cluster written live: its elements follow
            pos = data
        elif data + length > size:
            part = MATROSKA_PARTS.get(kind, f'element (ID {kind:#x})')
            return Cut(size, data + length, f'a Matroska {part} of a file written live')
        else:
            pos = data + length
    return None


def _matroska_seconds(f, segment_start, size):
    """The duration a Matroska Segment's Info declares, in seconds; None where it declares none (or the Info is not
    among the first of the Segment's elements, where muxers write it)."""
    pos = segment_start
    for _ in range(8):
        element = _ebml_element(f, pos)
        if element is None or element[2] is None or element[1] + element[2] > size:
            return None
        kind, data, length = element
        if kind == SEGMENT_INFO:
            return _info_seconds(f, data, data + length)
        pos = data + length
    return None


def _info_seconds(f, pos, end):
    """The Duration of a Segment Info element (``pos`` to ``end``), in seconds, by its TimestampScale (default: 1 ms
    per tick)."""
    scale, duration = 1_000_000, None
    while pos < end:
        element = _ebml_element(f, pos)
        if element is None or element[2] is None:
            return None
        kind, data, length = element
        f.seek(data)
        value = f.read(length)
        if kind == TIMESTAMP_SCALE:
            scale = int.from_bytes(value, 'big')
        elif kind == DURATION and length in (4, 8):
            duration = struct.unpack('>f' if length == 4 else '>d', value)[0]
        pos = data + length
    return None if duration is None else duration * scale / 1e9


def _avi_cut(f, size):
    """The RIFF chunk that runs past the end of the file, if any (one of size 0 or 0xFFFFFFFF was never finished
    and says nothing)."""
    pos = 0
    while pos + 8 <= size:
        f.seek(pos)
        tag, length = struct.unpack('<4sI', f.read(8))
        if tag != b'RIFF' or length in (0, 0xFFFFFFFF):
            return None
        if pos + 8 + length > size:
            return Cut(size, pos + 8 + length, 'its RIFF chunk' if pos == 0 else f'its RIFF chunk at byte {pos}')
        pos += 8 + length + (length & 1)
    return None


def _ts_cut(f, size):
    """The transport stream packet the file ends inside, if any: the packets' stride is found at the start, and a
    file is cut when its last whole packet is in step and the bytes after it begin another."""
    head = f.read(TS_SYNCED * 204 + 204)
    for packet, sync in TS_PACKETS:
        phase = next((start for start in range(packet) if all(
            start + k * packet < len(head) and head[start + k * packet] == TS_SYNC for k in range(TS_SYNCED))), None)
        if phase is not None:
            break
    else:
        return None
    rest = (size - (phase - sync)) % packet
    if rest == 0 or size - rest - packet < 0:
        return None
    f.seek(size - rest - packet)
    tail = f.read()
    if tail[sync] != TS_SYNC or (rest > sync and tail[packet + sync] != TS_SYNC):
        return None  # not in step at the end: bytes appended, not a cut packet
    return Cut(size, size - rest + packet, f'a {packet}-byte transport stream packet')
