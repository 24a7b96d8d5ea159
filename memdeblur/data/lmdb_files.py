"""Opening LMDB folders read-only with errors that name the folder, never a crash.

LMDB maps ``data.mdb`` into memory; when the file was truncated (an interrupted copy or
download), reading a page past its end kills the process with a bus error, with no message.
The header records the last page in use, so the file's size tells in advance whether every
page is there.
"""
import os.path as osp

import lmdb

from memdeblur.utils.errors import DataError


def open_lmdb_readonly(path):
    """Open an LMDB folder read-only after checking that its ``data.mdb`` holds every page it claims.

    Returns:
        lmdb.Environment: The open environment (close it, or use it as a context manager).

    Raises:
        DataError: naming the folder when it is missing, not an LMDB, or truncated.
    """
    data_file = osp.join(path, 'data.mdb')
    if not osp.isfile(data_file):
        raise DataError(f'LMDB {path} has no data.mdb (not an LMDB folder, or an incomplete copy).')
    try:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False)
    except lmdb.Error as err:
        raise DataError(f'LMDB {path} cannot be opened: {err}') from err
    needed = (env.info()['last_pgno'] + 1) * env.stat()['psize']
    size = osp.getsize(data_file)
    if size < needed:
        env.close()
        raise DataError(f'LMDB {data_file} is truncated: {size} bytes, but its header needs {needed} '
                        '(an interrupted copy? copy or convert it again).')
    return env
