"""The config schema (``workflow/schemas/config.schema.yaml``, the one home of every default,
bound and meaning): loading it, validating a config against it with errors that name the key,
and typing values that arrive as strings (``--config``, YAML 1.1's ``5e-7``)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG_PATH = REPO / "config" / "config.yaml"


class ConfigError(ValueError):
    """A config value the schema accepts but the experiment cannot use."""


#: A decimal number as YAML 1.2 writes it: PyYAML (YAML 1.1) reads ``5e-7`` (no dot) as a string.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _number(text: str, types: set[str]) -> int | float | None:
    """``text`` as the number the schema's ``types`` allow, or None when it is not one."""
    if not _NUMBER.fullmatch(text.strip()):
        return None
    value = float(text)
    if "number" in types:
        return value
    return int(value) if value.is_integer() else None  # integer only


def coerce_cli_strings(config: dict, schema: dict) -> dict:
    """Give string values their schema types, in place (config files and ``--config`` alike).

    Snakemake parses nested ``--config 'dpo={beta: 0.2, seeds: [1, 2]}'`` with YAML's base loader,
    so every scalar arrives as a string; and PyYAML reads ``learning_rate: 5e-7`` in a config
    file as the string ``'5e-7'`` (YAML 1.1 wants a dot). Where the schema expects a number,
    integer or boolean and gets a string, the string is read as YAML, then as a decimal number
    (``5e-7``); anything else is left to the validator, whose error names the key and the value.
    """

    def walk(value: Any, node: dict, key: str = "") -> Any:
        node = _resolve_ref(node, schema)
        if "oneOf" in node:  # e.g. eval.checkpoints: a boolean or an object
            alts = [_resolve_ref(a, schema) for a in node["oneOf"]]
            kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
            match = next((a for a in alts if a.get("type") == kind), None) if kind else None
            if match is not None:
                return walk(value, match, key)
            node = {**node, "type": [t for a in alts for t in _types(a)]}
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else types
        if isinstance(value, str) and {"object", "array"} & set(types) and value.lstrip()[:1] in ("{", "["):
            # Snakemake keeps a --config value it cannot parse as a plain string; the schema
            # would then report a type error with a schema dump. Say what is wrong instead.
            import yaml

            try:
                yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ConfigError(
                    f"--config {key}={value}: not valid YAML ({str(exc).splitlines()[0]}); "
                    f"expected e.g. {key}='{{key: value}}' with balanced brackets"
                ) from None
        if isinstance(value, str) and {"number", "integer", "boolean", "null"} & set(types):
            import yaml

            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = value
            if isinstance(parsed, str) and {"number", "integer"} & set(types):
                number = _number(value, set(types))
                return value if number is None else number
            return parsed if not isinstance(parsed, str) else value
        if isinstance(value, dict):
            props = node.get("properties", {})
            for k, v in value.items():
                if k in props:
                    value[k] = walk(v, props[k], f"{key}.{k}" if key else k)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            return [walk(v, node["items"], key) for v in value]
        return value

    walk(config, schema)
    return config


def _types(node: dict) -> list[str]:
    t = node.get("type", [])
    return [t] if isinstance(t, str) else list(t)


@functools.cache
def load_schema() -> dict:
    """The config schema (``workflow/schemas/config.schema.yaml``): the one home of defaults."""
    import yaml

    # libyaml's loader where PyYAML has it: the schema is parsed at every Snakefile load
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)  # noqa: S506 (a safe loader)


def _resolve_ref(node: dict, schema: dict) -> dict:
    while "$ref" in node:
        target: Any = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_node(dotted: str) -> dict:
    """The schema of config key ``dotted`` (e.g. ``"dpo.lora"``), ``$ref`` resolved."""
    schema = load_schema()
    node = schema
    for part in dotted.split("."):
        node = _resolve_ref(node, schema)
        try:
            node = node["properties"][part]
        except KeyError:
            raise KeyError(f"config key {dotted!r}: not in {SCHEMA_PATH.name}") from None
    return _resolve_ref(node, schema)


def schema_properties(dotted: str) -> tuple[str, ...]:
    """Keys an object-valued config section accepts, in schema order."""
    return tuple(schema_node(dotted).get("properties", {}))


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "config"


def _explain(error) -> str:
    """One line for a schema violation: the key, what it got, and what is allowed."""
    import difflib

    where = _where(error.absolute_path)
    schema = error.schema
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        parts = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        prefix = "" if where == "config" else f"{where}."
        return (f"{prefix}{extra[0]}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(parts)} in {where}; "
                f"allowed keys: {', '.join(allowed)}")
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not allowed; allowed values: {', '.join(map(repr, schema['enum']))}"
    if error.validator == "type":
        expected = _types(schema)
        hint = ""
        if isinstance(error.instance, str) and "number" in expected:
            hint = "; write a number without quotes, e.g. 0.0002 or 5.0e-7"
        elif isinstance(error.instance, str) and "integer" in expected:
            hint = "; write a whole number without quotes, e.g. 16"
        return f"{where}: {error.instance!r} has the wrong type; expected {schema['type']}{hint}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[error.validator]
        return f"{where}: {error.instance!r} is out of bounds; expected a value {bound} {error.validator_value}"
    if error.validator == "minItems":
        return f"{where}: {error.instance!r} is empty or too short; expected at least {error.validator_value} item(s)"
    if error.validator == "uniqueItems":
        return f"{where}: {error.instance!r} has duplicate items; expected each value once"
    if error.validator in ("oneOf", "anyOf"):
        return f"{where}: {error.instance!r} is not allowed; expected {schema.get('description', error.message)}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "pattern":
        return f"{where}: {error.instance!r} does not match the pattern {error.validator_value!r}"
    return f"{where}: {error.message}"


def validate_config(config: dict) -> dict:
    """Validate ``config`` against the schema and fill its defaults, in place.

    Every violation is reported on one line naming the key, the value and what is allowed
    (jsonschema's own message dumps the schema); then Snakemake's validator fills the defaults.
    Raises :class:`ConfigError`.
    """
    import jsonschema
    from snakemake.utils import validate

    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        lines = list(dict.fromkeys(_explain(e) for e in errors))
        raise ConfigError("invalid config (workflow/schemas/config.schema.yaml):\n  " + "\n  ".join(lines))
    validate(config, str(SCHEMA_PATH))
    return config
