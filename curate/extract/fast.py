"""The common cases of urls.resolve and captions.normalise over whole columns at once (pyarrow compute).

Each function finds the rows whose result it can state without Python (a `simple` mask), computes those
with Arrow kernels, and hands every other row to the scalar function. The masks are sufficient conditions
only: a row outside them is never wrong, just slower. tests/unit/extract/test_fast.py checks that both paths
give the same result on the same rows.

Simple URLs: an absolute http(s) URL of printable ASCII without `"#<>\\`, no userinfo, no port and a host
name that does not end in a digit (so it is no IP address), or a root-relative, path-relative (no `./`, no
`:` in the first segment) or protocol-relative URL on a page whose base origin is such a URL.
Simple captions: printable ASCII of at most the cap's length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.extract import captions, urls

_CH = r"[!$-;=?-\[\]-~]"  # printable ASCII but " # < > \ (and space)
_HOST = r"(?:[A-Za-z_1-9]|0[A-WYZa-wyz1-9_.\-])[A-Za-z0-9_.\-]*[A-Za-z_\-]|[A-Za-z_]"
SIMPLE_ABSOLUTE = rf"^(?i:https?)://(?:{_HOST})(?:[/?]{_CH}*)?$"
SIMPLE_ORIGIN = rf"^(?i:https?)://(?:{_HOST})$"


def resolve(raw: pa.Array, page_of: np.ndarray, bases: Sequence[urls.Base | None], max_chars: int
            ) -> tuple[pa.Array, pa.Array]:
    """(url, reason) for every raw URL (string array); `page_of[i]` indexes `bases` for row i."""
    n = len(raw)
    if n == 0:
        return pa.array([], pa.string()), pa.array([], pa.string())
    origin, directory, scheme = _simple_bases(bases)
    take = pa.array(page_of, pa.int32())
    head = pc.utf8_lower(pc.utf8_slice_codeunits(raw, 0, 8))
    absolute = pc.or_(pc.starts_with(head, "http://"), pc.starts_with(head, "https://"))
    proto = pc.starts_with(raw, "//")
    root = pc.and_(pc.starts_with(raw, "/"), pc.invert(proto))
    relative_ok = pc.invert(pc.match_substring(raw, "./"))
    plain = pc.and_(pc.and_(pc.invert(pc.match_substring_regex(raw, r"^(?:[/?#.]|[^/]*:)")), relative_ok),
                    pc.greater(pc.utf8_length(raw), 0))
    joined = pc.case_when(
        pc.make_struct(absolute, proto, pc.and_(root, relative_ok), plain),
        raw,
        pc.binary_join_element_wise(pc.take(scheme, take), raw, ":"),
        pc.binary_join_element_wise(pc.take(origin, take), raw, ""),
        pc.binary_join_element_wise(pc.take(directory, take), raw, ""))
    simple = pc.and_(pc.match_substring_regex(joined, SIMPLE_ABSOLUTE),
                     pc.less_equal(pc.utf8_length(joined), max_chars))
    simple = pc.fill_null(simple, False).to_numpy(zero_copy_only=False)
    url = pc.if_else(simple, joined, pa.scalar(None, pa.string()))
    reason = pa.nulls(n, pa.string())
    slow = np.flatnonzero(~simple)
    if len(slow):
        rows = raw.take(pa.array(slow)).to_pylist()
        found = [urls.resolve(r, bases[page_of[i]], max_chars) for r, i in zip(rows, slow, strict=True)]
        mask = np.zeros(n, bool)
        mask[slow] = True
        url = pc.replace_with_mask(url, pa.array(mask), pa.array([u for u, _ in found], pa.string()))
        reason = pc.replace_with_mask(reason, pa.array(mask), pa.array([r for _, r in found], pa.string()))
    return url, reason


def _simple_bases(bases: Sequence[urls.Base | None]) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(origin, dir, scheme) per page, null where the page has no base or its origin is not simple (then
    its relative URLs take the scalar path)."""
    origin = pa.array([b.origin if b is not None else None for b in bases], pa.string())
    ok = pc.fill_null(pc.match_substring_regex(origin, SIMPLE_ORIGIN), False)
    nothing = pa.scalar(None, pa.string())
    return (pc.if_else(ok, origin, nothing),
            pc.if_else(ok, pa.array([b.dir if b is not None else None for b in bases], pa.string()), nothing),
            pc.if_else(ok, pa.array([b.scheme if b is not None else None for b in bases], pa.string()), nothing))


def normalise(raw: pa.Array, max_chars: int) -> pa.Array:
    """captions.normalise of every row (string array), null where nothing is left."""
    n = len(raw)
    if n == 0:
        return pa.array([], pa.string())
    simple = pc.and_(pc.match_substring_regex(raw, r"^[ -~]*$"), pc.less_equal(pc.utf8_length(raw), max_chars))
    simple = pc.fill_null(simple, False).to_numpy(zero_copy_only=False)
    out = pc.utf8_trim(pc.replace_substring_regex(raw, " {2,}", " "), " ")
    out = pc.if_else(pc.and_(pa.array(simple), pc.greater(pc.utf8_length(out), 0)), out,
                     pa.scalar(None, pa.string()))
    slow = np.flatnonzero(~simple & ~pc.is_null(raw).to_numpy(zero_copy_only=False))
    if len(slow):
        mask = np.zeros(n, bool)
        mask[slow] = True
        values = [captions.normalise(r, max_chars) for r in raw.take(pa.array(slow)).to_pylist()]
        out = pc.replace_with_mask(out, pa.array(mask), pa.array(values, pa.string()))
    return out
