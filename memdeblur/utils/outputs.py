"""Writing outputs whole or not at all, only where they belong, and never over a user's files.

Every tool writes through this module, which enforces four rules:

* **Plain names.** Names that become path components (experiment, result and data-set names,
  sequence and frame names read from data) are single, plain names: ``plain_name_problem``.
* **Whole or nothing.** An output is built in a fresh hidden sibling (``.partial-<tag>-<name>``, ``hidden_sibling``:
  a digest stands for a name too long to fit) and renamed into place only after the caller finished and checked it;
  on an error, Ctrl-C or SIGTERM the sibling is removed and the earlier output stays as it was. Siblings left by a
  killed run (SIGKILL cannot be caught) are removed by the next run writing the same output.
* **Nobody else's files.** An output that is, contains or lies inside one of the inputs (those passed, and every
  input the run has named: ``memdeblur.utils.run_inputs``), or that is or contains the current folder, is refused
  even with ``--force``. With ``--force`` an
  existing folder is replaced only when everything in it was written there by a memdeblur tool
  (the folder's ``.memdeblur-output.json`` lists what), a file only by a file, a link never.
* **One writer.** While a run writes an output it holds a lock on it (``flock``, released by the
  kernel when the process dies): a second run writing the same output is refused.
"""
import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import os.path as osp
import shutil
import uuid

from memdeblur.utils.run_inputs import run_inputs

MANIFEST = '.memdeblur-output.json'


class OutputError(ValueError):
    """An output that would escape its folder, replace someone's files, or could not be written whole."""


def plain_name_problem(name):
    """Why ``name`` cannot be used as one path component (None when it can).

    A plain name is a non-empty string without path separators, NUL, ``.`` or ``..``: it can
    neither leave the folder it is joined to nor replace it.
    """
    if not isinstance(name, str) or not name:
        return 'it must be a non-empty name'
    if name in ('.', '..'):
        return 'it names a folder itself, not something inside one'
    if any(sep and sep in name for sep in ('/', '\\', os.sep, os.altsep)) or '\0' in name:
        return 'it must be a plain name, without path separators'
    return None


def is_within(path, folder):
    """Whether ``path`` is ``folder`` (through symbolic or hard links) or lies inside it, links resolved."""
    if osp.exists(path) and osp.exists(folder) and osp.samefile(path, folder):
        return True
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_location(path, inputs=()):
    """Refuse an output that is, contains or lies inside an input (``inputs``, and every input the current run
    has read or been given: ``memdeblur.utils.run_inputs``), or that is or contains the current folder.

    Raises:
        OutputError: naming the output and what it would overwrite; never suggesting ``--force``, which does not
            make an input replaceable.
    """
    if is_within(os.getcwd(), path):
        raise OutputError(f'Output {path} is the current folder or contains it; writing it would replace the '
                          'folder you are working in. Name a new file or folder.')
    for source, what in run_inputs() + [(source, 'the input') for source in inputs]:
        if is_within(path, source) or is_within(source, path):
            relation = ('lies inside' if is_within(path, source) and not is_within(source, path) else
                        'contains' if not is_within(path, source) else 'is')
            raise OutputError(f'Output {path} {relation} {what} {source}, which this run reads; writing it would '
                              'destroy what is read, even with --force. Name an output outside the inputs.')


def read_manifest(folder):
    """The manifest of a folder a memdeblur tool wrote, or None when it has none (or an unreadable one)."""
    try:
        with open(osp.join(folder, MANIFEST)) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def write_manifest(folder, tool, files=None):
    """Mark ``folder`` as written by ``tool``.

    Args:
        folder (str): The folder.
        tool (str): Which tool or part wrote it, for people reading the file.
        files (list[str] | None): Every file in it (relative paths), or None for a folder the
            tool keeps adding to (an experiment folder), whose content is all its own.
    """
    with open(osp.join(folder, MANIFEST), 'w') as f:
        json.dump({'written_by': tool, 'files': files}, f, indent=1)


def files_below(folder):
    """Relative paths of every file below ``folder`` (links included, not followed)."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if osp.islink(osp.join(root, d))]:
            found.append(osp.relpath(osp.join(root, name), folder))
    return sorted(found)


def foreign_files(folder):
    """The files in ``folder`` that no memdeblur tool wrote there (all of them when it has no manifest)."""
    manifest = read_manifest(folder)
    present = [f for f in files_below(folder) if f != MANIFEST]
    if manifest is None:
        return present
    if manifest.get('files') is None:
        return []
    listed = set(manifest['files'])
    return [f for f in present if f not in listed]


def check_replaceable(path, is_folder):
    """Refuse replacing ``path`` (which exists) unless it is what this output would be and holds only our files."""
    if osp.islink(path):
        raise OutputError(f'{path} is a symbolic link; refusing to replace it. Name another output.')
    if osp.isdir(path) != is_folder:
        raise OutputError(f'{path} exists as a {"folder" if osp.isdir(path) else "file"}, but this output is a '
                          f'{"folder" if is_folder else "file"}; refusing to replace it. Name another output.')
    if is_folder:
        foreign = foreign_files(path)
        if foreign:
            shown = ', '.join(foreign[:5]) + (' ...' if len(foreign) > 5 else '')
            raise OutputError(f'{path} holds files that memdeblur did not write there ({shown}); refusing to '
                              'replace it, even with --force. Move them, or name another output.')


def name_max(folder):
    """The longest file name ``folder``'s file system takes (255 where it does not say)."""
    try:
        return os.pathconf(folder, 'PC_NAME_MAX')
    except (OSError, ValueError):
        return 255


def hidden_sibling(path, prefix, suffix=''):
    """``<prefix><name><suffix>`` beside ``path``, or ``<prefix>~<digest of the name><suffix>`` when that would be
    longer than the file system takes: every valid output name gets staging and lock siblings."""
    parent, name = osp.split(osp.abspath(path))
    sibling = f'{prefix}{name}{suffix}'
    if len(os.fsencode(sibling)) > name_max(parent if osp.isdir(parent) else '/'):
        sibling = f'{prefix}~{hashlib.sha256(os.fsencode(name)).hexdigest()[:32]}{suffix}'
    return osp.join(parent, sibling)


@contextlib.contextmanager
def output_lock(path):
    """Hold the lock on output ``path`` (a hidden ``.<name>.lock`` sibling) for the duration of the block.

    Raises:
        OutputError: when another process holds it.
    """
    lock_path = hidden_sibling(path, '.', '.lock')
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise OutputError(f'Another run is writing {path} right now; wait for it or name another output.'
                                  ) from err
            raise
        try:  # the lock file may have been removed (and re-created) by the previous holder meanwhile
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock_path)
        os.close(fd)


def remove_path(path):
    """Remove a file, link or folder tree, if it exists."""
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


def staging_sibling(path, kind, tag):
    """The hidden sibling of output ``path`` that run ``tag`` builds it in (``kind`` ``partial``) or moves the old
    output aside to (``old``)."""
    return hidden_sibling(path, f'.{kind}-{tag}-')


def _remove_leftovers(path):
    """Remove the staging siblings a killed run left for ``path`` (only called while holding its lock)."""
    parent = osp.dirname(osp.abspath(path))
    for entry in os.listdir(parent):
        for kind in ('partial', 'old'):
            prefix = f'.{kind}-'
            tag = entry[len(prefix):].partition('-')[0]
            if entry.startswith(prefix) and osp.basename(staging_sibling(path, kind, tag)) == entry:
                remove_path(osp.join(parent, entry))


def check_outputs(files=(), folders=(), overwrite=False, inputs=()):
    """The checks ``staged_outputs`` makes before writing, for tools that want them before long work.

    Returns:
        dict[str, bool]: Every output path, mapped to whether it is a folder.

    Raises:
        OutputError: an output in a forbidden place or replacing what is not ours.
        FileExistsError: an existing output without ``overwrite``.
    """
    kinds = {**{p: False for p in files}, **{p: True for p in folders}}
    for path in kinds:
        check_output_location(path, inputs)
    existing = [p for p in kinds if osp.lexists(p)]
    if existing and not overwrite:
        verb = 'exists; pass --force to replace it.' if len(existing) == 1 else 'exist; pass --force to replace them.'
        raise FileExistsError(f'{", ".join(map(str, existing))} {verb}')
    for path in existing:
        check_replaceable(path, kinds[path])
    return kinds


@contextlib.contextmanager
def staged_outputs(files=(), folders=(), overwrite=False, inputs=(), tool='memdeblur'):
    """Write several outputs all-or-nothing; yields ``{final path: temporary sibling path}``.

    The temporary siblings do not exist when the block starts: the block creates them. Every
    output's location is checked (``check_output_location``), existing ones are refused unless
    ``overwrite`` and then replaced only when ``check_replaceable`` allows, and each output is
    locked while it is written. When the block ends without an error, every folder
    gets a manifest of its files and every output is renamed into place (an old output moved aside
    first and removed last); on any error, Ctrl-C or SIGTERM (``cli.run_tool`` turns it into an
    exception) the siblings are removed and the old outputs stay as they were.

    Args:
        files (list[str]): Output files.
        folders (list[str]): Output folders.
        overwrite (bool): Replace existing outputs (``--force``).
        inputs (list[str]): What the run reads; no output may be, contain or lie inside one.
        tool (str): Recorded in the folders' manifests.
    """
    kinds = check_outputs(files, folders, overwrite, inputs)
    tag = uuid.uuid4().hex[:8]
    staging = {p: staging_sibling(p, 'partial', tag) for p in kinds}
    with contextlib.ExitStack() as locks:
        for path in kinds:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            locks.enter_context(output_lock(path))
            _remove_leftovers(path)
        check_outputs(files, folders, overwrite, inputs)  # again: another run may have finished it meanwhile
        try:
            yield staging
            for path, is_folder in kinds.items():
                if is_folder:
                    os.makedirs(staging[path], exist_ok=True)
                    write_manifest(staging[path], tool, files_below(staging[path]))
        except BaseException:
            for tmp in staging.values():
                remove_path(tmp)
            raise
        backups = {}
        for final, tmp in staging.items():
            if osp.lexists(final):
                backups[final] = staging_sibling(final, 'old', tag)
                os.replace(final, backups[final])
            os.replace(tmp, final)
        for backup in backups.values():
            remove_path(backup)


def write_bytes(path, data):
    """Write ``data`` to ``path`` and check that all of it arrived (a full disk raises, never truncates)."""
    with open(path, 'wb') as f:
        f.write(data)
    if osp.getsize(path) != len(data):
        raise OutputError(f'{path}: {osp.getsize(path)} of {len(data)} bytes written.')


def _current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_file(path, inputs=()):
    """Yield a temporary sibling path to write ``path``'s new content to; it replaces ``path`` only when the
    block succeeds (an existing file is replaced; a folder, a link or an input is refused)."""
    with staged_outputs(files=[path], overwrite=True, inputs=inputs) as staging:
        yield staging[path]
        if osp.exists(staging[path]):
            os.chmod(staging[path], 0o666 & ~_current_umask())


def write_text_atomic(path, text):
    """Replace ``path`` by ``text`` (UTF-8) as a whole: readers see the old file or the complete new one."""
    with atomic_file(path) as tmp:
        write_bytes(tmp, text.encode())


NON_FINITE = {'inf': float('inf'), '-inf': float('-inf'), 'nan': float('nan')}


def strict_json(value):
    """``value`` with every non-finite float as the string ``"inf"``, ``"-inf"`` or ``"nan"`` (the PSNR of identical
    frames, the NIQE of a black one): JSON has no such numbers, and strict parsers refuse Python's bare
    ``Infinity``/``NaN``. ``numbers_from_json`` turns them back."""
    if isinstance(value, float) and not math.isfinite(value):
        return 'nan' if math.isnan(value) else ('inf' if value > 0 else '-inf')
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def numbers_from_json(value):
    """What ``strict_json`` wrote, with ``"inf"``, ``"-inf"`` and ``"nan"`` as floats again."""
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {key: numbers_from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [numbers_from_json(item) for item in value]
    return value


def write_json_atomic(path, value):
    """Replace ``path`` by ``value`` as strict JSON (``strict_json``), written whole."""
    write_text_atomic(path, json.dumps(strict_json(value), indent=2, allow_nan=False) + '\n')
