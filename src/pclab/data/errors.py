"""Exceptions raised by `pclab.data`."""

from __future__ import annotations


class DatasetUnavailable(Exception):
    """A data set cannot be obtained from any source known to pclab.

    The message always names the command to run or the path to provide so that
    the next call succeeds.
    """


class ChecksumMismatch(DatasetUnavailable):
    """A downloaded or user-supplied source file failed its SHA-256 check.

    The file is never parsed (in particular never unpickled) once this is raised.
    """


class IDXFormatError(ValueError):
    """An IDX file (the MNIST / Fashion-MNIST container format) is malformed."""
