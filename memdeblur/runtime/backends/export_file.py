"""The file an export writes, as runtimes read it: an ONNX model whose ``metadata_props`` hold, under
``EXPORT_METADATA_KEY``, one JSON object saying how to feed it (frames, margins, sizes, network, checkpoint), with two
SHA-256 digests that ``load_export`` checks whenever an export is read, so that a file changed after its
verification is refused rather than run as if it were verified:

* ``model_sha256``: the serialized model without that metadata entry: graph, weights, opsets and all. Protobuf
  serializes a message's fields in a fixed order, so parsing the file and serializing it again gives the bytes hashed
  at export. An export holds its weights inline; one re-saved with its weights in files beside it (ONNX's external
  data) holds references instead, so it no longer matches, and nothing outside the checked file is ever read;
* ``metadata_sha256``: the metadata but this digest, as JSON with sorted keys: the frames, margins and size rules a
  consumer feeds the model by.

They catch a changed file (an edited weight, node or metadata value, a partial copy), not a forger, who could
recompute them. The exporter (``memdeblur.export.onnx_export``) writes this format; the backends read it here,
without importing the exporter.
"""
import json
import os
import os.path as osp

from memdeblur.utils.digests import sha256
from memdeblur.utils.errors import DataError
from memdeblur.utils.optional_imports import require
from memdeblur.utils.run_inputs import note_input

EXPORT_METADATA_KEY = 'memdeblur'
EXPORT_FORMAT = 2  # 2 added the digests load_export checks; it refuses format 1, which cannot be checked
INPUT_NAME, OUTPUT_NAME = 'frames', 'restored'


class ChangedExport(DataError):
    """An exported model whose graph, weights or metadata no longer match the digests recorded at its export."""


class VerifiedExport:
    """An export read once and checked by ``load_export``: its ``path``, its metadata ``info``, and ``model``, the
    serialized model that ``model_sha256`` covers (without the metadata entry). The backends run ``model`` rather than
    reading the file again, so what runs is what was checked.
    """

    def __init__(self, path, info, model):
        self.path, self.info, self.model = path, info, model

    def __repr__(self):
        return f'VerifiedExport({self.path!r})'


def metadata_digest(info):
    """SHA-256 of the metadata ``info`` but its own ``metadata_sha256``, as JSON with sorted keys."""
    return sha256(json.dumps({k: v for k, v in info.items() if k != 'metadata_sha256'}, sort_keys=True).encode())


def load_export(path):
    """The export at ``path`` read once and checked against the digests its export recorded (module docstring).

    Returns:
        VerifiedExport: its metadata and the model the backends run.

    Raises:
        DataError: one line naming the file: missing, empty, truncated or not an ONNX model, not written by
            memdeblur's export, exported by an older version or in an unknown format, or (``ChangedExport``) changed
            after its export.
    """
    onnx = require('onnx', 'onnx', 'read an exported model')
    path = os.fspath(path)
    note_input(path, 'the exported model')  # the run reads it: none of its outputs may replace it
    again = 'export the network again (tools/export_onnx.py)'
    if not osp.isfile(path):
        raise DataError(f'{path}: no such file (an exported model, .onnx, was expected).')
    with open(path, 'rb') as f:
        data = f.read()
    if not data:
        raise DataError(f'{path} is empty (0 bytes), not an exported model; {again}.')
    try:
        model = onnx.load_from_string(data)
    except Exception as err:  # protobuf's DecodeError and the like
        raise DataError(f'{path} is truncated or not an ONNX model: it does not parse as one ({err}); {again}.'
                        ) from err
    del data  # parsed: not kept beside the model while that is serialized again below
    keys = [entry.key for entry in model.metadata_props]
    if EXPORT_METADATA_KEY not in keys:
        raise DataError(f'{path} has no {EXPORT_METADATA_KEY!r} metadata: it was not written by memdeblur\'s export '
                        '(tools/export_onnx.py), or it was cut short; export the network with it.')
    index = keys.index(EXPORT_METADATA_KEY)
    try:
        info = json.loads(model.metadata_props[index].value)
    except ValueError as err:
        raise DataError(f'{path}: its {EXPORT_METADATA_KEY!r} metadata is not JSON ({err}).') from err
    found = info.get('format') if isinstance(info, dict) else info
    if isinstance(info, dict) and type(found) is int and 0 < found < EXPORT_FORMAT:
        raise DataError(f'{path} was exported by an older version of memdeblur (export format {found}, without the '
                        'digests of its graph, weights and metadata that this version checks before running a model); '
                        f'{again}.')
    if not isinstance(info, dict) or found != EXPORT_FORMAT:
        raise DataError(f'{path}: export format {found!r} is unknown to this version of memdeblur (it reads format '
                        f'{EXPORT_FORMAT}); {again}.')
    changed = f'it was changed after its export and is not the model that was verified; {again}'
    if info.get('metadata_sha256') != metadata_digest(info):
        raise ChangedExport(f'{path}: its {EXPORT_METADATA_KEY!r} metadata no longer matches the SHA-256 recorded '
                            f'at export: {changed}.')
    del model.metadata_props[index]
    serialized = model.SerializeToString()
    if sha256(serialized) != info.get('model_sha256'):
        raise ChangedExport(f'{path}: its graph or weights no longer match the SHA-256 recorded at export: '
                            f'{changed}.')
    return VerifiedExport(path, info, serialized)


def read_export_info(path):
    """The metadata ``export_onnx`` wrote into the model at ``path``, once the file is checked (``load_export``,
    which raises its errors)."""
    return load_export(path).info
