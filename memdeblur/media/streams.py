"""What a video file carries besides its pixels, and how a restored video keeps it.

A phone video is more than frames: its audio, the display rotation a player applies, the time of each frame
(variable frame rates hold frames longer), and the colour conventions its pixels are coded in
(``memdeblur.media.colour``). ``probe_video_facts`` reads them; ``VideoFileWriter`` (``memdeblur.media.writers``)
writes the restored frames with the same timestamps, rotation and colour conventions, and ``StreamCopier`` carries
the other streams over:

* audio is copied packet for packet when the output container takes its codec, otherwise decoded and
  re-encoded in the container's audio codec (AAC for mp4, mov, mkv, avi; Opus for webm);
* subtitle and data streams are copied when the container takes them, otherwise left out;
* attachments (fonts of Matroska subtitles, cover images) are copied into Matroska outputs, otherwise left out;
* each stream keeps its descriptive tags (``DESCRIPTIVE_TAGS``: language, title, ...) and disposition (default,
  forced, ...);

each decision is reported in words (``StreamCopier.notes``), so the tool can say what happened.
"""
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import av

from memdeblur.media.colour import ColourConventions, component_bits

# stream tags that describe the content, kept on the output's streams (the others describe the source's encoding)
DESCRIPTIVE_TAGS = ('language', 'title', 'handler_name', 'comment')
# containers whose frame table lists every frame the stream holds (FFmpeg's names start so): the mp4 family
FRAME_TABLE_FORMATS = ('mov', )


@dataclass(frozen=True)
class VideoFacts:
    """A video file's first video stream and what else it holds.

    Attributes:
        time_base (Fraction): The unit of its frames' timestamps.
        rotation (int): Display rotation in degrees, as the decoder reports it (``VideoFrame.rotation``).
        colour (ColourConventions): How its pixels are coded.
        bits (int): Bits per colour component (8, 10, ...).
        other_streams (list[tuple[int, str, str]]): (index, type, codec) of its audio, subtitle and data streams.
        end_pts (int | None): Where its last frame ends, in ``time_base`` units (None: the container does not say).
        declared_frames (int): How many frames the container's table of frames lists (mp4, mov:
            ``FRAME_TABLE_FORMATS``; 0 for the others, whose counts in headers may include dropped frames).
    """

    time_base: Fraction
    end_pts: Optional[int] = None
    rotation: int = 0
    colour: ColourConventions = ColourConventions()
    bits: int = 8
    other_streams: list = field(default_factory=list)
    declared_frames: int = 0


def probe_video_facts(container):
    """The ``VideoFacts`` of an open input container (its first frame decoded for rotation and colour)."""
    stream = container.streams.video[0]
    first = next(container.decode(stream), None)
    others = [(s.index, s.type, s.codec_context.name if s.codec_context else '?')
              for s in container.streams if s.type in ('audio', 'subtitle', 'data')]
    end = stream.start_time + stream.duration if stream.duration and stream.start_time is not None else None
    declared = (stream.frames or 0) if container.format.name.startswith(FRAME_TABLE_FORMATS) else 0
    if first is None:
        return VideoFacts(Fraction(stream.time_base or Fraction(1, 90000)), end, other_streams=others,
                          declared_frames=declared)
    return VideoFacts(Fraction(stream.time_base), end, int(first.rotation or 0), ColourConventions.of(first),
                      component_bits(first.format), others, declared)


class StreamCopier:
    """Carries a source video's audio, subtitle and data streams into an output container being written.

    Create it before the first packet is written (the streams must exist when the header is), call
    ``mux_until(seconds)`` as video is written, so that packets interleave, and ``finish()`` at the end.

    Args:
        source (str): The input video file.
        output (av.container.OutputContainer): The container being written.
        audio_codec (str): Codec to re-encode audio in when the container cannot take the source's.
    """

    def __init__(self, source, output, audio_codec):
        self.output = output
        self.input = av.open(source)
        self.notes = []
        self._copied = {}  # input stream index -> output stream (packets copied)
        self._encoded = {}  # input stream index -> (output stream, resampler)
        supported = output.supported_codecs
        for stream in self.input.streams:
            if stream.type == 'attachment':
                self._attach(stream)
                continue
            if stream.type not in ('audio', 'subtitle', 'data'):
                continue
            codec = stream.codec_context.name if stream.codec_context else None
            what = f'{stream.type} stream #{stream.index} ({codec or "unknown codec"})'
            if codec in supported:
                self._copied[stream.index] = output.add_stream_from_template(stream)
                self._describe(self._copied[stream.index], stream)
                self.notes.append(f'{what}: copied without re-encoding')
            elif stream.type == 'audio':
                encoded = output.add_stream(audio_codec, rate=stream.codec_context.sample_rate,
                                            layout=stream.codec_context.layout.name)
                self._describe(encoded, stream)
                self._encoded[stream.index] = (encoded, av.AudioResampler(
                    format=encoded.codec_context.codec.audio_formats[0].name, layout=encoded.codec_context.layout.name,
                    rate=encoded.codec_context.sample_rate))
                self.notes.append(f'{what}: the {output.format.name} container does not take {codec}; '
                                  f're-encoded as {audio_codec}')
            else:
                self.notes.append(f'{what}: the {output.format.name} container does not take it; left out')
        streams = [self.input.streams[i] for i in (*self._copied, *self._encoded)]
        self._packets = self.input.demux(streams) if streams else iter(())
        self._pending: Optional[av.Packet] = None

    @staticmethod
    def _describe(output_stream, stream):
        """Give an output stream the source stream's descriptive tags and disposition."""
        output_stream.metadata.update({key: value for key, value in stream.metadata.items()
                                       if key.lower() in DESCRIPTIVE_TAGS})
        output_stream.disposition = stream.disposition

    def _attach(self, stream):
        """Copy an attachment (a font, a cover image) into a Matroska output; name it as left out elsewhere."""
        name = stream.metadata.get('filename', '')
        what = f'attachment #{stream.index} ({name or "unnamed"})'
        if self.output.format.name != 'matroska':
            self.notes.append(f'{what}: the {self.output.format.name} container cannot hold attachments; left out '
                              '(an .mkv output keeps it)')
            return
        copied = self.output.add_attachment(name or f'attachment_{stream.index}',
                                            stream.mimetype or 'application/octet-stream', stream.data)
        self._describe(copied, stream)
        self.notes.append(f'{what}: copied')

    def mux_until(self, seconds):
        """Write the source's packets up to ``seconds`` of presentation time."""
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            timed = packet.pts is not None and packet.time_base is not None
            if timed and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            self._write(packet)

    def finish(self):
        """Write the rest of the source's packets and flush the re-encoders; close the source."""
        self.mux_until(float('inf'))
        for stream, _ in self._encoded.values():
            for out in stream.encode(None):
                self.output.mux(out)
        self.input.close()

    def close(self):
        self.input.close()

    def _write(self, packet):
        index = packet.stream.index
        if index in self._copied:
            if packet.dts is None:  # the demuxer's flush packet
                return
            packet.stream = self._copied[index]
            self.output.mux(packet)
            return
        stream, resampler = self._encoded[index]
        for frame in packet.decode():
            for resampled in resampler.resample(frame):
                for out in stream.encode(resampled):
                    self.output.mux(out)
