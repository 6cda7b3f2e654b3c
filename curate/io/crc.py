"""CRC32C (Castagnoli), the checksum S3 and GCS keep for whole objects, for tars.

Tars are checksummed with CRC32C rather than sha256: it runs at memory speed (the `crc32c` package uses the
CPU's instruction, ~10 GB/s a core, and releases the GIL), where sha256 ran at about the speed of the copy it
checked and halved resharding. And it composes: `combine(crc(A), crc(B), len(B)) == crc(A + B)`, so the
threads that write runs of one tar at once each checksum their own run, in cache, and the tar's value follows
without reading the file back. The value is the same however the tar was cut into runs (any core count).

`combine` is zlib's `crc32_combine` (multiplication modulo the CRC polynomial, reflected bit order) with
Castagnoli's polynomial; tests check it against the package on random cuts.
"""

from __future__ import annotations

import crc32c as _crc32c

POLY = 0x82F63B78  # Castagnoli, reflected
_TOP = 1 << 31  # x**0 in reflected order


def value(data, crc: int = 0) -> int:
    """The CRC32C of `data` (any bytes-like object), continuing from `crc`."""
    return _crc32c.crc32c(data, crc)


def _multiply(a: int, b: int) -> int:
    """a * b modulo the polynomial (reflected order)."""
    product, mask = 0, _TOP
    while mask:
        if a & mask:
            product ^= b
        b = (b >> 1) ^ POLY if b & 1 else b >> 1
        mask >>= 1
    return product


def _powers() -> list[int]:
    """x**(2**k) modulo the polynomial for k = 0..31."""
    table = [_TOP >> 1]  # x**1
    for _ in range(31):
        table.append(_multiply(table[-1], table[-1]))
    return table


_X2N = _powers()


def _x8n(n: int) -> int:
    """x**(8n) modulo the polynomial: the shift that appending n bytes applies."""
    product, k = _TOP, 3
    while n:
        if n & 1:
            product = _multiply(_X2N[k & 31], product)
        n >>= 1
        k += 1
    return product


def combine(crc_a: int, crc_b: int, len_b: int) -> int:
    """CRC32C of A + B from the CRC32C of A, of B, and B's length in bytes."""
    return _multiply(_x8n(len_b), crc_a) ^ crc_b


def hexdigest(crc: int) -> str:
    return f"{crc:08x}"


class Crc32c:
    """A hashlib-like object (`update`, `hexdigest`) computing CRC32C."""

    name = "crc32c"

    def __init__(self) -> None:
        self.crc = 0

    def update(self, data) -> None:
        self.crc = _crc32c.crc32c(data, self.crc)

    def hexdigest(self) -> str:
        return hexdigest(self.crc)
