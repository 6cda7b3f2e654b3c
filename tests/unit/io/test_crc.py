"""CRC32C: our combination of run checksums against google's CRC32C of the whole (another implementation)."""

from __future__ import annotations

import random

import google_crc32c

from curate.io import crc


def test_the_check_value_of_the_standard():
    assert crc.value(b"123456789") == 0xE3069283  # the catalogue's check value for CRC-32C


def test_runs_combine_into_the_whole_at_any_cuts():
    rng = random.Random(7)
    for _ in range(100):
        data = rng.randbytes(rng.randrange(0, 20_000))
        cuts = sorted(rng.randrange(0, len(data) + 1) for _ in range(rng.randrange(0, 5)))
        total, at = 0, 0
        for end in [*cuts, len(data)]:
            total = crc.combine(total, crc.value(data[at:end]), end - at)
            at = end
        assert total == google_crc32c.value(data), (len(data), cuts)


def test_combining_an_empty_run_changes_nothing():
    assert crc.combine(0xDEADBEEF, 0, 0) == 0xDEADBEEF
    assert crc.combine(0, crc.value(b"abc"), 3) == crc.value(b"abc")
