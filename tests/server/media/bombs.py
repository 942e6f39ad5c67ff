"""Hostile images built by hand (no big allocation needed to make them)."""

from __future__ import annotations

import functools
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=4)
def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` all-black pixels.

    It is ~100 KB on the wire but decodes to ``width*height`` pixels (900 M by
    default: ~900 MB in Pillow's "1"/"L" modes) — a classic decompression bomb.
    The compressed stream is produced row by row, so making it needs no memory.
    """
    raw_row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    parts = []
    block = raw_row * 256
    rows = 0
    while rows + 256 <= height:
        parts.append(comp.compress(block))
        rows += 256
    parts.append(comp.compress(raw_row * (height - rows)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
