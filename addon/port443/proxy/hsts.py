"""The HSTS preload list (Chromium's, as packaged by `hstspreload`), held in memory for per-request lookups.

The package's own lookup opens and seeks its data file on every call; this reads the file once and parses
each small block of it the first time a lookup needs it. Pure apart from that one read.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import hstspreload

_IS_LEAF = 0x80
_INCLUDE_SUBDOMAINS = 0x40
_MAX_LAYERS = 5


class PreloadList:
    """Answers "is this host HSTS-preloaded?" the way browsers do, including includeSubDomains."""

    def __init__(self, data: bytes | None = None) -> None:
        self._data = (
            data
            if data is not None
            else resources.files("hstspreload").joinpath("hstspreload.bin").read_bytes()
        )
        package: Any = hstspreload
        self._jumps: list[list[tuple[int, int] | None]] = package._JUMPTABLE
        self._crc: list[int] = package._CRC8_TABLE
        self._gtlds: frozenset[bytes] = frozenset(package._GTLD_INCLUDE_SUBDOMAINS)
        self._blocks: dict[tuple[int, int], dict[bytes, bool]] = {}

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and self.lookup(host)

    def lookup(self, host: str) -> bool:
        """True if `host` (IDNA/punycode form) or a parent with includeSubDomains is preloaded."""
        try:
            name = host.lower().rstrip(".").encode("ascii")
        except UnicodeEncodeError:
            return False
        labels = name.split(b".")
        if labels[-1] in self._gtlds:
            return True
        # A preloaded name with n labels is a leaf in layer n-1, in the block of its first label's CRC.
        for depth in range(min(len(labels), _MAX_LAYERS), 0, -1):
            suffix = b".".join(labels[-depth:])
            leaves = self._block(depth - 1, labels[-depth])
            include_subdomains = leaves.get(suffix)
            if include_subdomains is not None and (suffix == name or include_subdomains):
                return True
        return False

    def _block(self, layer: int, label: bytes) -> dict[bytes, bool]:
        crc = 0
        for byte in label:
            crc = self._crc[crc ^ byte]
        key = (layer, crc)
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = self._parse(
                self._jumps[layer][crc] if layer < len(self._jumps) else None
            )
        return block

    def _parse(self, span: tuple[int, int] | None) -> dict[bytes, bool]:
        """Leaf entries of one block: full host name -> includeSubDomains."""
        leaves: dict[bytes, bool] = {}
        if span is None:
            return leaves
        data, pos, end = self._data, span[0], span[0] + span[1]
        while pos < end:
            flags, size = data[pos], data[pos + 1]
            if flags & _IS_LEAF:
                leaves[bytes(data[pos + 2 : pos + 2 + size])] = bool(flags & _INCLUDE_SUBDOMAINS)
            pos += 2 + size
        return leaves
