"""Frames: what was dumped comes back equal, in order; anything short of a whole frames file is refused."""

from __future__ import annotations

import io
import marshal

import pytest

from port443.engine import frames

DATA = {
    "format": 5,
    "blobs": [bytes([i % 256]) * (i % 7) for i in range(10_000)],
    "targets": {f"h{i}.test": (i, i + 1) if i % 3 else i for i in range(9_000)},
    "small": {"a": 1},
    "empty": [],
}


def dumped(data: dict[str, object]) -> bytes:
    out = io.BytesIO()
    frames.dump(data, out)
    return out.getvalue()


def test_what_is_dumped_loads_back_equal_and_in_order() -> None:
    back = frames.load(io.BytesIO(dumped(DATA)))
    assert back == DATA
    assert list(back["targets"]) == list(DATA["targets"])  # type: ignore[call-overload]


@pytest.mark.parametrize("cut", [0, 5, len(frames.MAGIC) + 3, -1, -100])
def test_a_truncated_file_is_refused(cut: int) -> None:
    data = dumped(DATA)
    with pytest.raises(ValueError):
        frames.load(io.BytesIO(data[:cut]))


def test_a_plain_marshal_file_is_refused() -> None:
    with pytest.raises(ValueError, match="not a frames file"):
        frames.load(io.BytesIO(marshal.dumps(DATA)))


def test_a_frame_of_the_wrong_kind_is_refused() -> None:
    data = bytearray(dumped({"blobs": list(range(5000))}))
    swapped = dumped({"blobs": {i: i for i in range(5000)}})  # same header shape, dict frames
    head = len(frames.MAGIC) + 8 + len(marshal.dumps({"small": {}, "large": {"blobs": ("list", 2)}}))
    with pytest.raises(ValueError, match="is not a list"):
        frames.load(io.BytesIO(bytes(data[:head]) + swapped[head:]))
