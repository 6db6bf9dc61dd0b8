"""NoCloud's raw meta-data completed by PyYAML (cloudinit_cernvm.nocloud)."""

from __future__ import annotations

import base64
import logging

import pytest

from cloudinit_cernvm.nocloud import RAW_KEY, merge_raw_meta


def raw(text: bytes) -> str:
    return base64.b64encode(text).decode()


def test_the_stage_values_win_and_the_rest_is_added() -> None:
    meta = {"instance-id": "from-cmdline", RAW_KEY: raw(b"instance-id: file\ndsmode: local\n")}
    assert merge_raw_meta(meta) == {"instance-id": "from-cmdline", "dsmode": "local"}


def test_json_is_yaml() -> None:
    meta = {RAW_KEY: raw(b'{"instance-id": 42, "public-keys": {"a": "k1"}}')}
    assert merge_raw_meta(meta) == {"instance-id": 42, "public-keys": {"a": "k1"}}


@pytest.mark.parametrize("text", [b"a: [unclosed\n", b"- a list\n", b"\xff\xfe"])
def test_bad_raw_file_keeps_the_stage_values(text: bytes,
                                             caplog: pytest.LogCaptureFixture) -> None:
    meta = {"instance-id": "x", RAW_KEY: raw(text)}
    with caplog.at_level(logging.WARNING):
        assert merge_raw_meta(meta) == meta
    assert len(caplog.records) == 1 and "NoCloud meta-data" in caplog.records[0].getMessage()


def test_no_raw_file() -> None:
    assert merge_raw_meta({"instance-id": "x"}) == {"instance-id": "x"}
