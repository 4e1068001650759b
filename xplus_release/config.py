"""Typed configuration: one pydantic model per set of options, from which come validation, YAML loading,
``--set key=value`` overrides and the command-line flags.

A ``Config`` subclass refuses unknown keys (``extra="forbid"``); every error is one line that names the
option, says what is wrong and, for a misspelt key, which known one was meant. A field becomes the flag
``--field-name`` with its ``description`` as help; ``json_schema_extra`` may add a short form
(``{"short": "-o"}``), a metavar, or another flag name (``{"flag": "rpm"}``: ``--rpm``, for a field whose
name is also a YAML key). A flag left out keeps the model's default, so the model is the only place a
default lives.
Lists are tuples, given on the command line as comma-separated text. Models read from YAML files (recipes,
pipelines) set ``yaml_keys`` so that errors name ``global_batch_size``, as the file spells it, and may nest
models in lists (``stages[0].bottom``).
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
from pydantic_core import ErrorDetails, PydanticUndefined

from xplus_release.errors import ConfigError

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base of every options model. Raises ``ConfigError`` (one line) from ``build``/``from_yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    section: typing.ClassVar[str] = "options"  # what error messages call this set of options
    yaml_keys: typing.ClassVar[bool] = False  # errors name options as YAML keys, not as --flags

    @field_validator("*", mode="before")
    @classmethod
    def _split_lists(cls, value: Any, info) -> Any:
        """``"en,zh"`` -> ``("en", "zh")`` for tuple fields, so flags, YAML and --set read alike."""
        if isinstance(value, str) and _is_tuple(cls.model_fields[info.field_name].annotation):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @classmethod
    def build(cls, values: Mapping[str, Any] | None = None, context: dict | None = None) -> typing.Self:
        """Validate ``values`` (unset keys keep their defaults); ``context`` reaches the validators (e.g. the
        folder that paths in a YAML file are relative to).

        Raises:
            ConfigError: an unknown key (with the closest known one) or a bad value, as one line.
        """
        try:
            return cls.model_validate(dict(values or {}), context=context)
        except ValidationError as err:
            raise ConfigError(cls._one_line(err)) from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Iterable[str] = ()) -> typing.Self:
        """The mapping in YAML file ``path``, then ``key=value`` overrides on top.

        Raises:
            ConfigError: the file is missing, is not a YAML mapping, or holds bad options.
        """
        return cls.build(merge_assignments(load_yaml_mapping(path, cls.section), parse_overrides(overrides)))

    def override(self, assignments: Iterable[str]) -> typing.Self:
        """A copy with ``key=value`` assignments applied (``a.b=1`` reaches into a nested model), validated
        like ``build``."""
        values = self.model_dump(exclude_unset=True)
        return type(self).build(merge_assignments(values, parse_overrides(assignments)))

    @classmethod
    def _one_line(cls, err: ValidationError) -> str:
        errors = err.errors()
        extra = [e["loc"] for e in errors if e["type"] == "extra_forbidden"]
        if extra:
            known = list(_model_at(cls, extra[0][:-1]).model_fields)
            close = difflib.get_close_matches(str(extra[0][-1]), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            names = ", ".join(cls._name(loc) for loc in extra)
            return f"unknown {cls.section} option(s): {names}; {hint}known: {', '.join(known)}"
        missing = [cls._name(e["loc"]) for e in errors if e["type"] == "missing"]
        if missing:
            return f"missing {cls.section} option(s): {', '.join(missing)}; add them"
        return cls._one_error(errors[0])

    @classmethod
    def _one_error(cls, first: ErrorDetails) -> str:
        message = first["msg"].removeprefix("Value error, ")
        # A check across options (of the whole model or of a nested one): its message names them itself.
        if not first["loc"] or (first["type"] == "value_error" and isinstance(first["input"], Mapping)):
            return message
        name = cls._name(first["loc"])
        if first["type"] == "literal_error":
            return f"unknown {name} {first['input']!r}; choose {first['ctx']['expected'].replace(chr(39), '')}"
        if first["type"] == "value_error":
            return f"{name} {message}, got {first['input']!r}"
        return f"{cls.section} option {name}: {message} (got {first['input']!r})"

    @classmethod
    def _name(cls, loc: tuple) -> str:
        """``("stages", 0, "top")`` -> ``stages[0].top``; as a flag (``comet-batch-size``) unless ``yaml_keys``."""
        name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
        if cls.yaml_keys:
            return name
        return flag_name(cls, name) if name in cls.model_fields else name.replace("_", "-")


AtLeastOne = Annotated[int, AfterValidator(lambda value: _at_least(value, 1))]
AtLeastZero = Annotated[int, AfterValidator(lambda value: _at_least(value, 0))]


def _at_least(value, low):
    if value < low:
        raise ValueError(f"must be at least {low}")
    return value


def _model_at(model: type[BaseModel], path: tuple) -> type[BaseModel]:
    """The nested model that ``path`` (field names, list indices) leads to from ``model``."""
    kind: Any = model
    for part in path:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            kind = field.annotation if field else None
        else:  # a list, tuple or dict of models: ``part`` is an index or key
            kind = ([arg for arg in get_args(kind) if arg is not Ellipsis] or [None])[-1]
        kind = _strip_optional(kind)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else model


def merge_assignments(values: dict, assignments: Mapping[str, Any]) -> dict:
    """``values`` with dotted ``assignments`` (``{"stage1.lr": 1e-4}``) set at their depth.

    Raises:
        ConfigError: a dotted key reaches into a value that is not a mapping (a list: set it whole).
    """
    merged = dict(values)
    for key, value in assignments.items():
        head, dot, rest = key.partition(".")
        if dot and not isinstance(merged.get(head) or {}, Mapping):
            raise ConfigError(f"--set {key}: {head} is not a mapping; set it whole, as {head}=VALUE")
        merged[head] = merge_assignments(merged.get(head) or {}, {rest: value}) if dot else value
    return merged


def load_yaml_mapping(path: str | Path, what: str = "config") -> dict:
    """Raises: ConfigError: ``path`` is missing, is not YAML, or its top level is not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {path} not found; pass the path of a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} file {path} must hold a mapping of option: value, not {type(data).__name__}")
    return data


def parse_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """``["limit=3", "langs=en,zh", "skip=[5]"]`` -> ``{"limit": 3, "langs": "en,zh", "skip": [5]}`` (values
    read as YAML).

    Raises:
        ConfigError: an assignment without ``=``.
    """
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not KEY=VALUE (e.g. --set limit=3)")
        try:
            values[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:  # not YAML: the text itself (validation says if it does not fit)
            values[key.strip()] = text
    return values


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, model: type[Config],
              prefix: str = "", exclude: Iterable[str] = (), required: Iterable[str] = ()) -> None:
    """One flag per field of ``model``: ``--{prefix}{flag name}`` (dest ``{prefix}{name}`` with underscores);
    the flags of the fields in ``required`` must be given (argparse says so, naming the flag)."""
    for name, field in model.model_fields.items():
        if name in exclude:
            continue
        flags = [f"--{prefix}{flag_name(model, name)}".replace("_", "-")]
        extra = _extra(field)
        if extra.get("short") and not prefix:
            flags.append(extra["short"])
        kwargs = _flag_kwargs(field.annotation, field.default)
        if extra.get("metavar") or extra.get("flag"):
            kwargs["metavar"] = extra.get("metavar") or flag_name(model, name).replace("-", "_").upper()
        parser.add_argument(*flags, dest=f"{prefix}{name}".replace("-", "_"), default=argparse.SUPPRESS,
                            help=_flag_help(field.description, field.default), required=name in required, **kwargs)


def flag_name(model: type[BaseModel], name: str) -> str:
    """The flag of field ``name`` without ``--``: its own ``flag`` if it declares one, else the name with dashes."""
    return _extra(model.model_fields[name]).get("flag") or name.replace("_", "-")


def _extra(field) -> dict:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def given_flags(model: type[Config], namespace: argparse.Namespace, prefix: str = "",
                exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The values of the flags ``add_flags`` made that were given on the command line, by field name."""
    dests = {name: f"{prefix}{name}".replace("-", "_") for name in model.model_fields if name not in exclude}
    return {name: getattr(namespace, dest) for name, dest in dests.items() if hasattr(namespace, dest)}


def from_flags(model: type[C], namespace: argparse.Namespace, prefix: str = "", exclude: Iterable[str] = ()) -> C:
    """``model`` from the flags ``add_flags`` made (with the same ``exclude``); flags not given keep the
    model's defaults."""
    return model.build(given_flags(model, namespace, prefix, exclude))


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
    shown_default = default is not None and not isinstance(default, bool) and default not in ((), "")
    if shown_default and default is not PydanticUndefined and "default" not in text:
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
