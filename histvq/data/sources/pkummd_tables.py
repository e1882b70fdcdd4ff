"""PKU-MMD's small text files: per-video label files, the optional actions table and split
files (formats in :mod:`histvq.data.sources.pkummd`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from histvq.errors import ConfigError, RawFormatError

BACKGROUND = "background"

_INTEGER = re.compile(r"^[+-]?\d+$")
_SPLIT_TOKEN = re.compile(r"[,\s]+")


class Instance(NamedTuple):
    """One labelled action: its label-file line, class id and 1-based inclusive frames."""

    line: int
    class_id: int
    start: int
    end: int


def read_actions_table(path: Path) -> dict[int, str]:
    """``{class id: label name}`` from an actions table (format in the module docstring)."""
    lines = _read_lines(path, ConfigError, "actions table")
    table: dict[int, str] = {}
    seen_content = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        first_line, seen_content = not seen_content, True
        for separator in (",", "\t"):
            if separator in line:
                id_text, _, name = line.partition(separator)
                break
        else:
            id_text, _, name = line.partition(" ")
        id_text, name = id_text.strip(), name.strip().strip('"').strip()
        if not _INTEGER.match(id_text):
            if first_line:
                continue  # a header line
            raise ConfigError(
                f"{path}:{number}: expected '<class id>,<name>' with an integer id, got {line!r}"
            )
        class_id = int(id_text)
        token = "_".join(name.split())
        if class_id < 1:
            raise ConfigError(
                f"{path}:{number}: class ids start at 1 (0 is {BACKGROUND}), got {class_id}"
            )
        if not token:
            raise ConfigError(f"{path}:{number}: class {class_id} has no name")
        if token == BACKGROUND:
            raise ConfigError(f"{path}:{number}: the name {BACKGROUND!r} is reserved")
        if class_id in table:
            raise ConfigError(f"{path}:{number}: class id {class_id} appears twice")
        if token in table.values():
            raise ConfigError(f"{path}:{number}: class name {token!r} appears twice")
        table[class_id] = token
    if not table:
        raise ConfigError(f"{path}: actions table lists no classes")
    return dict(sorted(table.items()))


def read_split_file(path: Path) -> list[str]:
    """The video names a split file lists, in file order, each once."""
    lines = _read_lines(path, ConfigError, "split file")
    names: dict[str, None] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for token in _SPLIT_TOKEN.split(line.rsplit(":", 1)[-1]):
            if not token:
                continue
            if "/" in token or "\\" in token:
                raise ConfigError(
                    f"{path}:{number}: expected video names (file stems such as 0002-L), "
                    f"got {token!r}"
                )
            names.setdefault(token, None)
    if not names:
        raise ConfigError(f"{path}: split file lists no videos")
    return list(names)


def read_label_file(path: Path) -> list[Instance]:
    """The action instances of one label file, in file order (frames not yet range-checked)."""
    lines = _read_lines(path, RawFormatError, "label file")
    instances: list[Instance] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 5 and not fields[-1]:
            fields.pop()  # a trailing comma
        if len(fields) != 4 or not all(_INTEGER.match(field) for field in fields):
            raise RawFormatError(
                f"{path}:{number}: expected 'class,start,end,confidence' (4 integers), got {line!r}"
            )
        class_id, start, end, _confidence = (int(field) for field in fields)
        if class_id < 1:
            raise RawFormatError(
                f"{path}:{number}: class id must be >= 1 ({BACKGROUND} is implicit), got {class_id}"
            )
        if start > end:
            raise RawFormatError(
                f"{path}:{number}: instance starts after it ends (start {start} > end {end})"
            )
        instances.append(Instance(number, class_id, start, end))
    return instances


def _read_lines(path: Path, error: type[Exception], what: str) -> list[str]:
    if not path.is_file():
        raise error(f"{path}: {what} does not exist")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as problem:
        raise error(f"{path}: {what} is not a UTF-8 text file ({problem.reason})") from None
