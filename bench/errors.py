"""Errors the CLI turns into exit codes."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user (spec, flags, files): exit status 2, one line, no traceback.

    The message says what is wrong and where, e.g.
    ``spec.yaml: models[1]: unknown model 'unet3'; choose one of: testnet, unet, ...``.
    """


class TrialsFailedError(Exception):
    """Some trials failed; the others are recorded. Exit status 1."""
