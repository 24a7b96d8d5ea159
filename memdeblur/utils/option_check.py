"""Checking options: unknown keys get the closest valid name, wrong types and missing keys name the option.

BasicSR passes options dicts straight to constructors (``cls(**opt)``) or reads them with
``opt.get(key, default)``, so a misspelt key (``num_fram``, ``use_hfilp``) is silently ignored and
the default used instead, and a wrong type (``num_frame: eight``) fails deep inside with a bare
``TypeError``. Every options dict this project reads goes through ``check_options`` (datasets,
model sections) or ``checked_options`` (networks and losses built from keyword arguments) first. A size that
would allocate more than ``MAX_OPTION_BYTES`` is refused with the limit named (``check_option_bytes``).
"""
import difflib
import functools
import inspect
from dataclasses import dataclass
from typing import Callable


class OptionError(ValueError):
    """An options dict with an unknown key, a value of the wrong type or a missing required key."""


@dataclass(frozen=True)
class OptionType:
    """What values an option accepts, and how an error message describes them."""

    description: str
    accepts: Callable

    def __call__(self, value):
        return self.accepts(value)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return _is_int(value) or isinstance(value, float)


INT = OptionType('an integer', _is_int)
NUMBER = OptionType('a number (write 1e-4 as !!float 1e-4: YAML reads a bare 1e-4 as text)', _is_number)
BOOL = OptionType('true or false', lambda value: isinstance(value, bool))
STR = OptionType('a string', lambda value: isinstance(value, str))
DICT = OptionType('a mapping of options', lambda value: isinstance(value, dict))
ANY = OptionType('any value', lambda value: True)
INT_LIST = OptionType('a list of integers',
                      lambda value: isinstance(value, (list, tuple)) and all(_is_int(v) for v in value))
POSITIVE_INT_LIST = OptionType('a list of integers of at least 1',
                               lambda value: INT_LIST(value) and all(v >= 1 for v in value))
NUMBER_LIST = OptionType('a list of numbers',
                         lambda value: isinstance(value, (list, tuple)) and all(_is_number(v) for v in value))


def at_least(minimum, option_type=INT):
    """``option_type`` (an integer by default) no smaller than ``minimum``."""
    return OptionType(f'{option_type.description} of at least {minimum}',
                      lambda value: option_type(value) and value >= minimum)


def positive(option_type=NUMBER):
    """``option_type`` (a number by default) greater than zero."""
    return OptionType(f'{option_type.description} greater than 0', lambda value: option_type(value) and value > 0)


def optional(option_type):
    """``option_type`` or None (``~`` in YAML)."""
    return OptionType(f'{option_type.description}, or ~', lambda value: value is None or option_type(value))


def one_of(*choices):
    """One of a fixed set of values."""
    return OptionType(f'one of {", ".join(map(repr, choices))}', lambda value: value in choices)


# The most memory one thing an options file sizes may take (a network's weights, one batch of frames): far above
# what the models here need (the released MemDeblur's weights: 28 MB; its training batch of 8 clips of 8 frames
# of 256x256, blurry and sharp: 101 MB), far below what a mistyped size asks for (EDVR with num_feat: 100000: 360 GB
# in one convolution), which would end in an allocation traceback or a swapping machine long after the options
# were read.
MAX_OPTION_BYTES = 16 * 2**30


def size_text(num_bytes):
    """``num_bytes`` with a binary unit: ``'512 B'``, ``'28.0 MiB'``, ``'335.3 GiB'``."""
    if num_bytes < 1024:
        return f'{num_bytes} B'
    for unit in ('KiB', 'MiB', 'GiB', 'TiB'):
        num_bytes /= 1024
        if num_bytes < 1024 or unit == 'TiB':
            return f'{num_bytes:.1f} {unit}'


def check_option_bytes(num_bytes, what, where, partial=False):
    """Refuse options that size ``what`` (a network's weights, one batch of frames) at more than
    ``MAX_OPTION_BYTES``, naming the size and the limit, before anything is allocated; ``partial``: ``num_bytes``
    is what was counted before counting stopped (the size is at least that)."""
    if num_bytes > MAX_OPTION_BYTES:
        raise OptionError(f'{where}: {what} would take {"at least " * partial}{size_text(num_bytes)}, more than the '
                          f'{size_text(MAX_OPTION_BYTES)} an options file may size one allocation at '
                          '(MAX_OPTION_BYTES, memdeblur/utils/option_check.py): a mistyped size?')


def unknown_option_message(key, valid, where):
    """'<where>: unknown option <key>; did you mean <closest>?' (or the list of valid names)."""
    close = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1, cutoff=0.6)
    hint = f'did you mean {close[0]!r}?' if close else f'valid options: {", ".join(sorted(map(str, valid)))}.'
    return f'{where}: unknown option {key!r}; {hint}'


def check_value(key, value, option_type, where):
    """Raise ``OptionError`` when ``value`` is not of ``option_type``."""
    if not option_type(value):
        raise OptionError(f'{where}: option {key!r} must be {option_type.description}, got {value!r}.')


def check_options(opt, schema, where, required=()):
    """Check an options dict against a schema.

    Args:
        opt (dict): The options.
        schema (dict[str, OptionType]): Every accepted key and the values it accepts.
        where (str): Which options these are (e.g. ``datasets:train (VideoDeblurDataset)``), for messages.
        required (tuple[str]): Keys that must be present.

    Raises:
        OptionError: naming the first unknown key (with the closest valid name), missing key or wrongly
            typed value.
    """
    if not isinstance(opt, dict):
        raise OptionError(f'{where}: expected a mapping of options, got {opt!r}.')
    for key in opt:
        if key not in schema:
            raise OptionError(unknown_option_message(key, schema, where))
    for key in required:
        if opt.get(key) is None:
            raise OptionError(f'{where}: option {key!r} is required ({schema[key].description}).')
    for key, value in opt.items():
        check_value(key, value, schema[key], where)


def checked_options(**types):
    """Class decorator: check the keyword options of ``__init__`` before it runs.

    Unknown keywords get the closest valid name instead of Python's bare ``TypeError``, and each
    keyword named in ``types`` must be of its ``OptionType``.
    """

    def decorate(cls):
        init = cls.__init__
        valid = [name for name in inspect.signature(init).parameters if name != 'self']

        @functools.wraps(init)
        def init_with_checks(self, *args, **kwargs):
            where = f'{cls.__name__} options'
            for key, value in kwargs.items():
                if key not in valid:
                    raise OptionError(unknown_option_message(key, valid, where))
                if key in types:
                    check_value(key, value, types[key], where)
            init(self, *args, **kwargs)

        cls.__init__ = init_with_checks
        return cls

    return decorate
