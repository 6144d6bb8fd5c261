"""Config files (``configfile:`` / ``--configfile``): YAML or JSON -> the Batchfile's variables.

Top-level keys become variables; a nested mapping's keys are reached with dots
(``{trim.adapter}``); a list of plain values becomes a list variable. Values are text, as a
command line would see them (``true``, ``3``, ``0.5``). JSON is YAML, so one parser reads both.
"""
from __future__ import annotations

from ..errors import BatchfileError

Scalar = str
ConfigValues = dict[str, "str | tuple[str, ...]"]


def read_config(path: str, display: str | None = None) -> ConfigValues:
    """The flattened values of the config file at ``path`` (local path or fsspec URL)."""
    import yaml   # only workflows with a config file pay for the import

    display = display or path
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise BatchfileError("the config file does not exist", display) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchfileError(f"cannot read the config file: {exc}", display) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BatchfileError(f"this config file is not valid YAML or JSON: {problem}", display,
                             line, column) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BatchfileError("a config file holds a mapping of names to values at its top level", display)
    out: ConfigValues = {}
    _flatten(data, "", out, display)
    return out


def read_text(path: str) -> str:
    """A small text file's content: a local path, or any fsspec URL (S3 through s3fs)."""
    if "://" in path:
        import fsspec
        with fsspec.open(path, "r", encoding="utf-8-sig") as fh:
            return fh.read()
    with open(path, encoding="utf-8-sig") as fh:
        return fh.read()


def _flatten(data: dict, prefix: str, out: ConfigValues, display: str) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str) or not key.isidentifier():
            raise BatchfileError(f"config key {name!r} is not a name (letters, digits, _; nested keys "
                                 "are reached with dots)", display)
        if isinstance(value, dict):
            _flatten(value, name + ".", out, display)
        elif isinstance(value, list):
            if any(isinstance(v, (dict, list)) for v in value):
                raise BatchfileError(f"config key {name!r}: a list becomes a list variable, so it holds "
                                     "plain values, not mappings or lists", display)
            out[name] = tuple(scalar_text(v) for v in value)
        else:
            out[name] = scalar_text(value)


def scalar_text(value) -> str:
    """A YAML value as a command line would write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
