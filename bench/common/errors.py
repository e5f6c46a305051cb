"""Errors the CLI turns into exit codes."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user (spec, flags, files): exit status 2, one line, no traceback.

    The message says what is wrong and where, e.g.
    ``spec.yaml: models[1]: unknown model 'unet3'; choose one of: testnet, unet, ...``.
    """


class TrialsFailedError(Exception):
    """Some trials failed; the others are recorded. Exit status 1."""


def error_line(error: BaseException) -> str:
    """The root cause of a trial's error in one line, e.g. ``ValueError: dice: weights ...``."""
    cause = error
    while isinstance(getattr(cause, "cause", None), BaseException) and cause.cause is not cause:
        cause = cause.cause  # Ray's task errors wrap the trial's own exception
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    name = type(cause).__name__
    return (text if text.startswith(name) else f"{name}: {text}".rstrip(": "))[:500]
