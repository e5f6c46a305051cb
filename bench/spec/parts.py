"""The small parts of a sweep spec (a search space, a model or loss, a scheduler), and the
typed keys (pydantic) the spec is read with, whose errors become the spec's one-line messages.

``Keys`` models refuse unknown keys and coerce nothing (``'2'`` is no integer, ``true`` no
number); ``say`` turns a pydantic error into ``(location, "what is wrong; allowed ...")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WrapValidator,
)


@dataclass(frozen=True)
class Space:
    """A search space for one hyperparameter: ``kind`` in SPACE_KINDS, with its ``args``.

    ``choice`` args are the values; ``uniform``/``loguniform`` args are ``[low, high]``;
    ``randint`` args are ``[low, high)`` integers (as ``ray.tune.randint``).
    """

    kind: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Component:
    """A model or loss of the sweep: registry ``name`` with fixed ``options``.

    ``label`` is what the results call it: the name alone, or e.g. ``focal(gamma=2)``
    so that two settings of the same loss are two rows of the leaderboard.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class Scheduler:
    """``fifo``, or ``asha`` with its grace period and reduction factor (in epochs)."""

    name: str = "fifo"
    grace_period: int = 1
    reduction_factor: float = 2.0


# ---------------------------------------------------------------- typed keys


class Keys(BaseModel):
    """A mapping of the spec: unknown keys refused, values not coerced; each field's
    docstring is its description in the JSON Schema (``zoobench schema``)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True,
                              use_attribute_docstrings=True)


Int0 = Annotated[int, Field(ge=0)]
Int1 = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
NoneIsEmpty = BeforeValidator(lambda value: {} if value is None else value)  # ``key:`` alone
SPACE_KINDS = ("choice", "uniform", "loguniform", "randint")


class Invalid(ValueError):  # noqa: N818  (a problem, as pydantic sees it)
    """A problem ``message`` at ``loc``, below the key whose check raises it."""

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


_SAY = {
    "int_type": "must be an integer, got {input!r}",
    "float_type": "must be a number, got {input!r}",
    "finite_number": "must be a number, got {input!r}",
    "bool_type": "must be true or false, got {input!r}",
    "string_type": "must be a string, got {input!r}",
    "greater_than_equal": "must be at least {ge}, got {input}",
    "greater_than": "must be greater than {gt}, got {input}",
    "model_type": "must be a mapping, got {input!r}",
    "list_type": "must be a list, got {input!r}",
    "missing": "missing (required)",
    "string_pattern_mismatch": "{input!r} is not allowed; use letters, digits, '.', '_', '-'",
}


def say(error: Any, model: Any) -> tuple[tuple[str | int, ...], str]:
    """``(location, message)`` of one pydantic ``error`` (a dict of ``errors()``) of ``model``."""
    loc, kind, ctx = tuple(error["loc"]), error["type"], error.get("ctx") or {}
    if isinstance(ctx.get("error"), Invalid):
        return (*loc, *ctx["error"].loc), str(ctx["error"])
    if kind == "literal_error":
        allowed = ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
        return loc, f"{error['input']!r} is not allowed; allowed: {allowed}"
    if kind == "extra_forbidden":
        return loc, f"unknown key; allowed: {', '.join(keys_at(model, loc[:-1])) or 'none'}"
    if kind in _SAY:
        return loc, _SAY[kind].format(input=error.get("input"), **ctx)
    return loc, error["msg"]


def keys_at(model: Any, loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed by the ``Keys`` model found at ``loc`` below ``model``."""
    for part in loc:
        if isinstance(part, str):
            spec_field = getattr(model, "model_fields", {}).get(part)
            model = spec_field and next((t for t in _types(spec_field.annotation)
                                         if isinstance(t, type) and issubclass(t, Keys)), None)
    return list(getattr(model, "model_fields", {}))


def _types(kind: Any) -> list[Any]:
    return [kind, *(t for arg in get_args(kind) for t in _types(arg))]


@cache
def _adapter(kind: Any) -> TypeAdapter:
    return TypeAdapter(kind)


def check(kind: Any, value: Any, *loc: str | int) -> Any:
    """``value`` validated as ``kind``, or ``Invalid`` (its first problem, at ``loc``)."""
    try:
        return _adapter(kind).validate_python(value, strict=True)
    except ValidationError as error:
        where, message = say(error.errors()[0], kind)
        raise Invalid(message, *loc, *where) from None


def _space_of(kind: Any, integer: bool) -> Any:
    def validate(value: Any, _handler: Any) -> Any:
        if not isinstance(value, dict):
            return check(kind, value)
        if len(value) != 1 or next(iter(value)) not in SPACE_KINDS:
            raise Invalid(f"unknown search space {value!r}; allowed: {{KIND: [...]}} with KIND one "
                      f"of {', '.join(SPACE_KINDS)}")
        space, args = next(iter(value.items()))
        if not isinstance(args, list) or not args:
            raise Invalid(f"must be a non-empty list, got {args!r}", space)
        if space != "choice" and len(args) != 2:
            raise Invalid(f"must be [low, high], got {args!r}", space)
        values = tuple(check(kind, v, space, i) for i, v in enumerate(args))
        if space == "choice":
            return Space(space, values)
        low, high = values
        if isinstance(low, bool) or not isinstance(low, (int, float)) or not low < high:
            raise Invalid(f"needs numbers low < high, got {args!r}", space)
        if space == "randint" and not all(isinstance(v, int) for v in args):
            raise Invalid(f"needs integers [low, high), got {args!r}", space)
        if space == "loguniform" and low <= 0:
            raise Invalid(f"needs 0 < low < high, got {args!r}", space)
        if space in ("uniform", "loguniform") and integer:
            raise Invalid(f"{space} gives fractional values; use randint or choice")
        return Space(space, values)

    return validate


class _SpaceKeys(Keys):
    """A search space: exactly one of these keys."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})
    choice: list[Any] = Field(None, min_length=1)
    """values to choose from"""
    uniform: tuple[float, float] = None
    """[low, high]"""
    loguniform: tuple[float, float] = None
    """[low, high], 0 < low"""
    randint: tuple[int, int] = None
    """[low, high): integers"""


def param(kind: Any, *, integer: bool = False) -> Any:
    """The type of a hyperparameter: a fixed ``kind`` value or a ``{KIND: args}`` ``Space``
    whose values are ``kind`` (``integer``: no ``uniform``/``loguniform``)."""
    return Annotated[kind | _SpaceKeys, WrapValidator(_space_of(kind, integer))]


def _seeds(value: Any, _handler: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise Invalid(f"must be a non-empty list of integers, got {value!r}")
    seeds = tuple(check(Int0, seed, i) for i, seed in enumerate(value))
    if len(set(seeds)) != len(seeds):
        raise Invalid(f"listed twice: {seeds!r}")
    return seeds


Seeds = Annotated[Int0 | Annotated[list[Int0], Field(min_length=1)],
                  WrapValidator(_seeds)]
"""A non-empty list of distinct integers >= 0 (one integer: a list of one)."""


class _Asha(Keys):
    grace_period: Int1 = 1
    """epochs every trial runs before it can be stopped"""
    reduction_factor: Annotated[float, Field(gt=1.0)] = 2.0
    """keep 1 / reduction_factor of the trials at each rung"""


class _AshaKeys(Keys):
    asha: Annotated[_Asha, NoneIsEmpty]


class _NoOptions(Keys):
    pass


def _scheduler(value: Any, _handler: Any) -> Scheduler:
    name, options = (next(iter(value.items())) if isinstance(value, dict) and len(value) == 1
                     else (value, None))
    name = check(Literal["fifo", "asha"], name)
    chosen = check(_Asha if name == "asha" else _NoOptions, options or {}, name)
    return Scheduler(name, **chosen.model_dump())


SchedulerKeys = Annotated[Literal["fifo", "asha"] | _AshaKeys, WrapValidator(_scheduler)]
