"""Typed configuration: one pydantic model per set of options, from which come validation, YAML loading,
``--set key=value`` overrides and the command-line flags.

A ``Config`` subclass refuses unknown keys (``extra="forbid"``); every error is one line that names the
option, says what is wrong and, for a misspelt key, which known one was meant. A field becomes the flag
``--field-name`` with its ``description`` as help (``json_schema_extra={"short": "-o"}`` adds a short
form); a flag left out keeps the model's default, so the model is the only place a default lives.
Lists are tuples, given on the command line as comma-separated text.
"""

from __future__ import annotations

import argparse
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator

from xplus_release.errors import ConfigError

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base of every options model. Raises ``ConfigError`` (one line) from ``build``/``from_yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    section: typing.ClassVar[str] = "options"  # what error messages call this set of options

    @field_validator("*", mode="before")
    @classmethod
    def _split_lists(cls, value: Any, info) -> Any:
        """``"en,zh"`` -> ``("en", "zh")`` for tuple fields, so flags, YAML and --set read alike."""
        if isinstance(value, str) and _is_tuple(cls.model_fields[info.field_name].annotation):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @classmethod
    def build(cls, values: Mapping[str, Any] | None = None) -> typing.Self:
        """Validate ``values`` (unset keys keep their defaults).

        Raises:
            ConfigError: an unknown key (with the closest known one) or a bad value, as one line.
        """
        try:
            return cls(**dict(values or {}))
        except ValidationError as err:
            raise ConfigError(cls._one_line(err)) from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Iterable[str] = ()) -> typing.Self:
        """The mapping in YAML file ``path``, then ``key=value`` overrides on top.

        Raises:
            ConfigError: the file is missing, is not a YAML mapping, or holds bad options.
        """
        return cls.build(_merge(load_yaml_mapping(path), parse_overrides(overrides)))

    def override(self, assignments: Iterable[str]) -> typing.Self:
        """A copy with ``key=value`` assignments applied (``a.b=1`` reaches into a nested model), validated
        like ``build``."""
        return type(self).build(_merge(self.model_dump(exclude_unset=True), parse_overrides(assignments)))

    @classmethod
    def _one_line(cls, err: ValidationError) -> str:
        errors = err.errors()
        extra = [e["loc"] for e in errors if e["type"] == "extra_forbidden"]
        if extra:
            known = list(_model_at(cls, extra[0][:-1]).model_fields)
            close = difflib.get_close_matches(str(extra[0][-1]), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            names = ", ".join(".".join(map(str, loc)) for loc in extra)
            return f"unknown {cls.section} option(s): {names}; {hint}known: {', '.join(known)}"
        first = errors[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a check across options: its message names them itself
            return message
        name = ".".join(str(part) for part in first["loc"] if isinstance(part, str)).replace("_", "-")
        if first["type"] == "literal_error":
            return f"unknown {name} {first['input']!r}; choose {first['ctx']['expected'].replace(chr(39), '')}"
        if first["type"] == "value_error":
            return f"{name} {message}, got {first['input']!r}"
        return f"{cls.section} option {name}: {message} (got {first['input']!r})"


AtLeastOne = Annotated[int, AfterValidator(lambda value: _at_least(value, 1))]


def _at_least(value, low):
    if value < low:
        raise ValueError(f"must be at least {low}")
    return value


def _model_at(model: type[BaseModel], path: tuple) -> type[BaseModel]:
    """The nested model that ``path`` (field names) leads to from ``model``."""
    for part in path:
        if isinstance(part, int):  # an item of a list of models: the list's field was the previous part
            continue
        field = model.model_fields.get(str(part))
        kind = _strip_optional(field.annotation) if field else None
        if _is_tuple(kind) and get_args(kind):
            kind = get_args(kind)[0]
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            return model
        model = kind
    return model


def _merge(values: dict, assignments: dict[str, Any]) -> dict:
    """``values`` with dotted ``assignments`` (``{"stage1.lr": 1e-4}``) set at their depth."""
    merged = dict(values)
    for key, value in assignments.items():
        head, dot, rest = key.partition(".")
        merged[head] = _merge(dict(merged.get(head) or {}), {rest: value}) if dot else value
    return merged


def load_yaml_mapping(path: str | Path) -> dict:
    """Raises: ConfigError: ``path`` is missing or its top level is not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass the path of a YAML file")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value, not {type(data).__name__}")
    return data


def parse_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """``["limit=3", "langs=en,zh"]`` -> ``{"limit": 3, "langs": "en,zh"}`` (values read as YAML scalars).

    Raises:
        ConfigError: an assignment without ``=``.
    """
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not KEY=VALUE (e.g. --set limit=3)")
        value = yaml.safe_load(text) if text.strip() else None
        values[key.strip()] = text if isinstance(value, (list, dict)) else value
    return values


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, model: type[Config],
              prefix: str = "", exclude: Iterable[str] = ()) -> None:
    """One flag per field of ``model``: ``--{prefix}{name}`` (dest ``{prefix}{name}`` with underscores)."""
    for name, field in model.model_fields.items():
        if name in exclude:
            continue
        flags = [f"--{prefix}{name}".replace("_", "-")]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("short") and not prefix:
            flags.append(extra["short"])
        kwargs = _flag_kwargs(field.annotation, field.default)
        parser.add_argument(*flags, dest=f"{prefix}{name}".replace("-", "_"), default=argparse.SUPPRESS,
                            help=_flag_help(field.description, field.default), **kwargs)


def given_flags(model: type[Config], namespace: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The values of the flags ``add_flags`` made that were given on the command line, by field name."""
    dests = {name: f"{prefix}{name}".replace("-", "_") for name in model.model_fields}
    return {name: getattr(namespace, dest) for name, dest in dests.items() if hasattr(namespace, dest)}


def from_flags(model: type[C], namespace: argparse.Namespace, prefix: str = "") -> C:
    """``model`` from the flags ``add_flags`` made; flags not given keep the model's defaults."""
    return model.build(given_flags(model, namespace, prefix))


def _flag_kwargs(annotation, default) -> dict:
    kind = _strip_optional(annotation)
    if kind is bool:  # off by default: a plain switch; else --x / --no-x
        return {"action": "store_true"} if default is False else {"action": argparse.BooleanOptionalAction}
    if get_origin(kind) is Literal:
        return {"choices": [str(choice) for choice in get_args(kind)]}
    if _is_tuple(annotation):
        return {"metavar": "LIST"}
    if kind in (int, float, Path):
        return {"type": kind}
    return {}


def _flag_help(description: str | None, default) -> str:
    text = description or ""
    if default not in (None, (), "", True, False) and "default" not in text:
        shown = ",".join(default) if isinstance(default, tuple) else default
        text += f" (default: {shown})"
    return text.replace("%", "%%")


def _strip_optional(annotation):
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _is_tuple(annotation) -> bool:
    return get_origin(_strip_optional(annotation)) is tuple
