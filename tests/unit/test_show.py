"""``show``'s gathering and redaction (``show.py``), called directly."""

from __future__ import annotations

import json
from pathlib import Path

from cloudinit_cernvm import old_syntax, show

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def test_show_part_descriptions_and_records_keep_no_values():
    parts = old_syntax.split_old_syntax((SAMPLES / "legacy-mixed.txt").read_text())
    described = [show.describe_part(p) for p in parts]
    assert described[0]["interpreter"] == "/bin/sh"
    assert described[1]["keys"] == ["cvmfs_branch", "resize_rootfs"]
    assert described[2]["sections"] == [
        {"section": "amiconfig", "keys": ["plugins"]},
        {"section": "noip", "keys": ["username", "password", "hostname"]},
    ]
    assert described[3]["keys"] == ["resolv_conf"]
    assert "secret" not in json.dumps(described)
    redacted = show._redact(
        {
            "command": "/usr/sbin/amiconfig",
            "exit_status": 1,
            "warnings": ["plugin noip failed"],
            "settings": {"_UCONTEXT_CVMFS_HTTP_PROXY": "http://user:pw@proxy"},
            "payload": "password = secret",
        }
    )
    assert redacted == {
        "command": "/usr/sbin/amiconfig",
        "exit_status": 1,
        "warnings": ["plugin noip failed"],
        "settings": {"keys": ["_UCONTEXT_CVMFS_HTTP_PROXY"]},
        "payload": "(set)",
    }
