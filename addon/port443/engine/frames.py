"""Marshal in frames: a dict whose large lists and dicts are written and read a few thousand items at a time.

`marshal.loads` needs the whole file in memory beside the objects it builds, so loading the shipped corpus's
11 MB cache entry peaked 11 MB above what the loaded index keeps. `marshal.load` from a file avoids the copy
but calls back into Python for every object, 2.3x slower. Length-prefixed frames keep both low: the peak is
one frame, and each frame is one read and one `marshal.loads`.
"""

from __future__ import annotations

import itertools
import marshal
import struct
from typing import IO, Any

MAGIC = b"port443-frames-1\n"
_ITEMS = 4096  # items per frame
_LENGTH = struct.Struct("<Q")


def dump(data: dict[str, Any], file: IO[bytes]) -> None:
    """Write `data`: first its small values and the shape of its large ones, then those in frames."""
    large = {k: v for k, v in data.items() if isinstance(v, list | dict) and len(v) > _ITEMS}
    shape = {k: ("list" if isinstance(v, list) else "dict", -(-len(v) // _ITEMS)) for k, v in large.items()}
    file.write(MAGIC)
    _write(file, {"small": {k: v for k, v in data.items() if k not in large}, "large": shape})
    for value in large.values():
        if isinstance(value, list):
            for start in range(0, len(value), _ITEMS):
                _write(file, value[start : start + _ITEMS])
        else:
            items = iter(value.items())
            while chunk := dict(itertools.islice(items, _ITEMS)):
                _write(file, chunk)


def load(file: IO[bytes]) -> dict[str, Any]:
    """Read what `dump` wrote.

    Raises:
        ValueError: when the file is not a complete set of frames (damaged, truncated or foreign).
    """
    if file.read(len(MAGIC)) != MAGIC:
        raise ValueError("not a frames file")
    head = _read(file)
    if not isinstance(head, dict) or not isinstance(head.get("small"), dict):
        raise ValueError("no header frame")
    data: dict[str, Any] = dict(head["small"])
    for key, (kind, frames) in head["large"].items():
        whole: list[Any] | dict[Any, Any] = [] if kind == "list" else {}
        for _ in range(frames):
            part = _read(file)
            if type(part) is not type(whole):
                raise ValueError(f"frame of {key!r} is not a {kind}")
            if isinstance(whole, list):
                whole.extend(part)
            else:
                whole.update(part)
        data[key] = whole
    return data


def _write(file: IO[bytes], value: Any) -> None:
    blob = marshal.dumps(value)
    file.write(_LENGTH.pack(len(blob)))
    file.write(blob)


def _read(file: IO[bytes]) -> Any:
    head = file.read(_LENGTH.size)
    if len(head) != _LENGTH.size:
        raise ValueError("truncated")
    (size,) = _LENGTH.unpack(head)
    blob = file.read(size)
    if len(blob) != size:
        raise ValueError("truncated")
    try:
        return marshal.loads(blob)
    except (EOFError, TypeError) as e:
        raise ValueError(f"damaged frame ({e})") from e
