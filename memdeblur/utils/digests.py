"""SHA-256 digests of bytes and files: what identifies weights and exported models in records and checks."""
import hashlib


def sha256(data):
    """Hex SHA-256 of ``data`` (bytes)."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path):
    """Hex SHA-256 of the file at ``path``, read in blocks (a checkpoint: what its weights are)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
