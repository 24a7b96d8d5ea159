"""Reading files other people made without running code from them: options, sequence tables, states.

Options files, ESTRNN's ``.pkl`` sequence tables, training states and test vectors are what
researchers download and pass around. YAML's full loader, ``pickle.load`` and
``torch.load(weights_only=False)`` all run whatever a crafted file asks for; here

* options files are read with YAML's safe loader (``!!float``, anchors and merge keys work;
  a Python tag is an error naming the file and line), and ``--force_yml`` values are YAML scalars;
  before anything is built from them (``OptionsLoader``), a key given twice in one mapping is an error naming
  both lines (YAML requires unique keys; PyYAML would keep the last one, a second ``path:`` section silently
  replacing the first), and so is a document whose aliases expand to more than ``MAX_EXPANDED_NODES`` values
  (a "billion laughs" file of a few lines that BasicSR's logging and copying would expand into gigabytes);
* sequence tables are unpickled with no globals but numpy's numeric scalars;
* checkpoints, training states and test vectors are read with ``torch.load(weights_only=True)``
  (``memdeblur.networks.checkpoint.read_checkpoint``).
"""
import io
import pickle

import numpy as np
import yaml

from memdeblur.utils.option_check import OptionError

SafeLoader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
MERGE_TAG = 'tag:yaml.org,2002:merge'
# Values (scalars, lists, mappings, keys) a document may expand to, each alias counted with what it refers to:
# the largest options file of this project is about 300; a billion-laughs file of 1 KB is billions.
MAX_EXPANDED_NODES = 100_000


class OptionsLoader(SafeLoader):
    """YAML's safe loader that checks the composed document before constructing it (``check_document``)."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        self.check_document(node)
        return self.construct_document(node)

    def check_document(self, root):
        """Refuse duplicate keys in any mapping and alias expansion past ``MAX_EXPANDED_NODES``.

        Walks the node graph once (aliases are shared nodes, so a "billion laughs" graph is small), computing
        each node's expanded size from its children's; a merge key (``<<: *base``) counts with what it merges,
        and a key written beside a merge key overrides the merged one: only keys written twice are duplicates.

        Raises:
            yaml.constructor.ConstructorError: with the line of the problem.
        """
        sizes, open_nodes, stack = {}, set(), [(root, False)]
        while stack:
            node, children_done = stack.pop()
            children = _children(node)
            if children_done:
                open_nodes.discard(id(node))
                sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
                if sizes[id(node)] > MAX_EXPANDED_NODES:
                    raise yaml.constructor.ConstructorError(
                        None, None, f'its aliases (*name) expand to more than {MAX_EXPANDED_NODES} values; '
                        'an options file holds a few hundred (refused before expanding them: a crafted file of a '
                        'few lines can expand to gigabytes)', None)
                continue
            if id(node) in sizes:
                continue
            if id(node) in open_nodes:
                raise yaml.constructor.ConstructorError(None, None, 'an alias refers to a value that contains it '
                                                        '(options cannot be recursive)', node.start_mark)
            if isinstance(node, yaml.MappingNode):
                self.check_unique_keys(node)
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)

    def check_unique_keys(self, node):
        """Refuse a mapping that gives a key twice, naming the key and both lines."""
        first_lines = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue  # merge keys may repeat; a non-scalar key is refused by the constructor
            key = self.construct_object(key_node)
            if key in first_lines:
                raise yaml.constructor.ConstructorError(
                    None, None, f'the key {key!r} is given twice in one mapping (lines {first_lines[key] + 1} and '
                    f'{key_node.start_mark.line + 1}); YAML requires unique keys, and the second would silently '
                    'replace the first: merge them or remove one', key_node.start_mark)
            first_lines[key] = key_node.start_mark.line


def _children(node):
    """The nodes directly inside ``node``: a mapping's keys and values, a list's items."""
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def yaml_error_message(path, err):
    """``<path>, line N: <problem>`` for a YAML error (Python tags explained)."""
    mark = getattr(err, 'problem_mark', None) or getattr(err, 'context_mark', None)
    where = f'{path}, line {mark.line + 1}' if mark is not None else str(path)
    problem = getattr(err, 'problem', None) or str(err)
    if 'constructor for the tag' in problem and 'python/' in problem:
        problem += ' (options files hold plain values; Python tags, which would run code, are refused)'
    return f'{where}: {problem}'


def load_options(path):
    """An options file as a dict, read with YAML's safe loader.

    Raises:
        OptionError: naming the file (and line) when it is missing, not YAML, holds a Python tag, gives a key
            twice, expands its aliases past ``MAX_EXPANDED_NODES`` or is not a mapping.
    """
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.load(f, Loader=OptionsLoader)
    except FileNotFoundError as err:
        raise OptionError(f'Options file {path} does not exist.') from err
    except (OSError, UnicodeDecodeError) as err:
        raise OptionError(f'Options file {path} cannot be read: {err}') from err
    except yaml.YAMLError as err:
        raise OptionError(yaml_error_message(path, err)) from err
    if not isinstance(opt, dict):
        raise OptionError(f'{path} is not an options file: expected a mapping of options, got {type(opt).__name__}.')
    return opt


def parse_override(entry):
    """``'a:b:c=value'`` -> (``['a', 'b', 'c']``, value), the value read as one YAML scalar or flow list/mapping.

    Like BasicSR's ``--force_yml`` (``none``/``~``, ``true``/``false``, numbers, ``!!float 1e-4``,
    ``[1, 2]``), but nothing is evaluated as Python.
    """
    keys, sep, text = entry.partition('=')
    keys = [k.strip() for k in keys.split(':')]
    if not sep or not all(keys):
        raise OptionError(f'--force_yml {entry!r}: expected KEY:SUBKEY=VALUE, e.g. train:total_iter=1000.')
    text = text.strip()
    if text.lower() == 'none':
        return keys, None
    try:
        value = yaml.load(text, Loader=OptionsLoader) if text else ''
    except yaml.YAMLError as err:
        raise OptionError(f'--force_yml {entry!r}: the value is not valid YAML ({yaml_error_message("value", err)}).'
                          ) from err
    return keys, value


def apply_overrides(opt, entries):
    """Set each ``--force_yml`` entry in ``opt``; the sections above the last key must exist."""
    for entry in entries or ():
        keys, value = parse_override(entry)
        section = opt
        for depth, key in enumerate(keys[:-1]):
            if not isinstance(section.get(key), dict):
                raise OptionError(f'--force_yml {entry!r}: the options have no section {":".join(keys[:depth + 1])}.')
            section = section[key]
        section[keys[-1]] = value
    return opt


class TableUnpickler(pickle.Unpickler):
    """Unpickles plain containers, strings and numbers (numpy's numeric scalars too); refuses every other global."""

    NUMPY_SCALAR = {('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar')}

    def find_class(self, module, name):
        if (module, name) in self.NUMPY_SCALAR:
            return _numeric_scalar
        if (module, name) == ('numpy', 'dtype'):
            return _numeric_dtype
        raise pickle.UnpicklingError(f'refused to load {module}.{name}: a sequence table holds only plain numbers, '
                                     'strings and containers (a crafted file would run code here)')


def _numeric_dtype(*args):
    dtype = np.dtype(*args)
    if dtype.kind not in 'biuf':
        raise pickle.UnpicklingError(f'refused numpy dtype {dtype}: only numbers are accepted')
    return dtype


def _numeric_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in 'biuf' or not isinstance(data, bytes):
        raise pickle.UnpicklingError('refused a numpy scalar that is not a plain number')
    return np.frombuffer(data, dtype=dtype, count=1)[0].item()


def load_plain_pickle(path):
    """Unpickle a file that holds only plain data (``TableUnpickler``)."""
    with open(path, 'rb') as f:
        return TableUnpickler(io.BytesIO(f.read())).load()
