"""Formatting rules Linux's procfs uses in more than one file (vsprintf's %*pb and
%*pbl bitmaps, seq_file escapes) and the str <-> bytes convention of this package."""
from __future__ import annotations


def b(text: str) -> bytes:
    """Encode generated text; names taken from bytes (comm, argv) round-trip exactly."""
    return text.encode("utf-8", "surrogateescape")


def s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def bitmap_hex(mask: int, nbits: int) -> str:
    """%*pb: 32-bit hex chunks, most significant first, separated by commas; the first
    chunk is as wide as its bits need ("3" for two CPUs, "00000000,00000001" for 64)."""
    nbits = max(nbits, 1)
    width = nbits % 32 or 32
    chunks = []
    for i in range(((nbits + 31) // 32 - 1) * 32, -1, -32):
        chunks.append(f"{(mask >> i) & ((1 << width) - 1):0{(width + 3) // 4}x}")
        width = 32
    return ",".join(chunks)


def bitmap_list(mask: int) -> str:
    """%*pbl: ranges of set bits ("0-1,4")."""
    parts = []
    bit = 0
    while mask >> bit:
        if not (mask >> bit) & 1:
            bit += 1
            continue
        start = bit
        while (mask >> (bit + 1)) & 1:
            bit += 1
        parts.append(str(start) if start == bit else f"{start}-{bit}")
        bit += 1
    return ",".join(parts)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\v": "\\v"}


def escape_name(name: str) -> str:
    """Status's Name: seq_escape_str(ESCAPE_SPACE | ESCAPE_SPECIAL, "\\n\\\\")."""
    return "".join(_ESCAPES.get(c, c) for c in name)


def mangle(text: str, chars: str = " \t\n\\") -> str:
    """seq_escape/mangle: the listed characters as three-digit octal (mount tables)."""
    return "".join(f"\\{ord(c):03o}" if c in chars else c for c in text)


def lines(pairs: list[tuple[str, str]]) -> bytes:
    """"Key:\\tvalue" lines, as status and most key/value files print them."""
    return b("".join(f"{k}:\t{v}\n" for k, v in pairs))
