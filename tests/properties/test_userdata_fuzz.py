"""Fuzzing the conversion and the checks: no crash but the documented errors.

``make test`` runs a modest number of inputs; ``make fuzz`` sets
``FUZZ_EXAMPLES`` (at least 100,000) and prints how many inputs ran.
"""

from __future__ import annotations

import os
import re
import time

from hypothesis import HealthCheck, given, settings

from cloudinit_cernvm import explain, userdata, validate
from cloudinit_cernvm.userdata_part import UserDataError
from tests.properties.strategies import hostile

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
_BOUNDARY = re.compile(rb'\Aboundary="([^"]+)"|\AContent-Type: multipart/mixed; boundary="([^"]+)"')


def _boundary(mime: bytes) -> bytes | None:
    match = _BOUNDARY.match(mime)
    return (match.group(1) or match.group(2)) if match else None


def test_fuzz_normalize_and_validate():
    counts = {"inputs": 0, "converted": 0, "unchanged": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile)
    def run(raw: bytes) -> None:
        counts["inputs"] += 1
        for problem in validate.check(raw):
            assert "\n" not in str(problem)
        try:
            explain.render(explain.explain(raw))
        except UserDataError as exc:
            assert "\n" not in str(exc) and str(exc)
        try:
            out = userdata.normalize(raw)
        except UserDataError as exc:
            counts["refused"] += 1
            assert "\n" not in str(exc) and str(exc)
            return
        boundary = _boundary(out)
        if boundary is None:
            counts["unchanged"] += 1
            assert userdata.normalize(out) == out
            return
        counts["converted"] += 1
        again = userdata.normalize(out)
        assert again.replace(_boundary(again), boundary) == out

    start = time.monotonic()
    run()
    elapsed = time.monotonic() - start
    print(
        f"\nfuzz: {counts['inputs']} inputs in {elapsed:.1f} s "
        f"({counts['converted']} converted, {counts['unchanged']} unchanged, "
        f"{counts['refused']} refused with a documented error)"
    )
    assert counts["inputs"] >= min(EXAMPLES, 100)
