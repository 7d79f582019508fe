"""Reading one column of a record for a mapping file: plain columns, paths into JSON records
(``a.b``, ``a[0].b``, ``a[*].b``, ``Parameters[Name=ForwardTo].Value``), case-insensitive keys, value
maps and casts to int, float, text or list."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stream.contract.codec import Invalid

_INT = re.compile(r"^[+-]?[0-9]+$")
FLOAT = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class Cast:
    type: str
    separator: str = ";"


_STEP = re.compile(r"^([^.\[\]]+)((?:\[[^\]]*\])*)$")


def get(row: Mapping[str, Any], column: str, ignore_case: bool = False) -> Any:
    """``row[column]``, or for a path into a JSON record (``a.b``, ``a[0].b``, ``a[*].b``,
    ``Parameters[Name=ForwardTo].Value``) the value there; empty -> None. With ``ignore_case`` the row's
    keys are already lower case (:func:`folded`) and the column is lowered here."""
    if ignore_case:
        column = column.lower()
    value = row.get(column)
    if value is None and column not in row and ("." in column or "[" in column):
        value = _walk_path(row, column, ignore_case)
    if isinstance(value, list):
        value = [v for v in value if v is not None and v != ""]
        return value or None
    return None if value is None or value == "" else value


def _walk_path(row: Mapping[str, Any], column: str, ignore_case: bool) -> Any:
    nodes: list[Any] = [row]
    many = False
    for part in column.split("."):
        match = _STEP.match(part)
        if match is None:
            return None
        key, selectors = match.group(1), match.group(2)
        nodes = [n.get(key) for n in nodes if isinstance(n, Mapping)]
        for selector in re.findall(r"\[([^\]]*)\]", selectors):
            out: list[Any] = []
            for node in nodes:
                if not isinstance(node, list):
                    continue
                if selector in ("*", ""):
                    out.extend(node)
                    many = True
                elif selector.lstrip("-").isdigit():
                    index = int(selector)
                    if -len(node) <= index < len(node):
                        out.append(node[index])
                elif "=" in selector:
                    name, _, wanted = selector.partition("=")
                    name = name.strip().lower() if ignore_case else name.strip()
                    wanted = wanted.strip().strip("'\"").lower()
                    out.extend(item for item in node if isinstance(item, Mapping)
                               and isinstance(item.get(name), str | int) and str(item.get(name)).lower() == wanted)
            nodes = out
    nodes = [n for n in nodes if n is not None]
    if many:
        return nodes
    return nodes[0] if nodes else None


def folded(value: Any, depth: int = 0) -> Any:
    if depth > 32:
        return value
    if isinstance(value, Mapping):
        return {str(k).lower(): folded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [folded(v, depth + 1) for v in value]
    return value


def mapped(value: Any, table: dict[str, Any]) -> Any:
    """A value through a value map (lists item by item); unlisted -> the "*" entry, else unchanged."""
    if isinstance(value, list):
        return [mapped(v, table) for v in value]
    if isinstance(value, str | int | float) and not isinstance(value, bool) or isinstance(value, bool):
        key = str(value).lower()
        if key in table:
            return copy.deepcopy(table[key])
        if "*" in table:
            return copy.deepcopy(table["*"])
    return value


def cast_value(value: Any, cast: Cast, column: str) -> Any:
    if cast.type == "list":
        if isinstance(value, list):
            return value
        if not isinstance(value, str):
            raise Invalid("wrong_type", f"{column} must be text to split into a list")
        return [item.strip() for item in value.split(cast.separator) if item.strip()]
    if cast.type == "str":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Invalid("wrong_type", f"{column} must be text or a number")
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise Invalid("bad_value", f"{column} is too long for a number")
        if cast.type == "int" and _INT.match(text):
            return int(text)
        if cast.type == "float" and FLOAT.match(text):
            number = float(text)
            if math.isfinite(number):
                return number
        raise Invalid("bad_value", f"{column} is not {'an integer' if cast.type == 'int' else 'a number'}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("wrong_type", f"{column} must be {'an integer' if cast.type == 'int' else 'a number'}")
    if cast.type == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise Invalid("bad_value", f"{column} is not an integer")
            return int(value)
        return value
    return float(value)
