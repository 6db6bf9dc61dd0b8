"""The seed's network-data: read as bytes by ``seed.py``, refused by
``network.py`` with one warning before any cloud-init converter is asked.
(The conversions themselves run on real cloud-init:
tests/cloudinit/test_network_config.py.)"""

from __future__ import annotations

import logging
import os

import pytest

from cloudinit_cernvm import network, seed
from tests.unit.test_seed import write


def test_seed_keeps_network_data_as_given(tmp_path):
    raw = b'{"links": [],\n "networks": []}'
    d = write(tmp_path / "s", source="ConfigDrive\n", user_data="", network_data=raw)
    assert seed.read_seed(str(d)).network_data == raw


def test_seed_without_network_data_is_normal(tmp_path):
    s = seed.read_seed(str(write(tmp_path / "s", source="EC2\n", user_data="")))
    assert s.network_data is None and s.problems == []


def test_unreadable_network_data_is_one_problem(tmp_path):
    d = write(tmp_path / "s", source="EC2\n", user_data="")
    os.mkfifo(d / "network-data", 0o600)
    s = seed.read_seed(str(d))  # a FIFO never blocks the boot
    assert s.network_data is None
    assert len(s.problems) == 1 and "network-data" in s.problems[0]


@pytest.mark.parametrize(("raw", "said"), [
    (b'{"links": [', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b'["links"]', "not a JSON object"),
    (b"[" * 40 + b"]" * 40, "not a JSON object"),
    (b'{"a": ' * 20 + b"1" + b"}" * 20, "not a JSON object of at most 16 levels"),
])
def test_bad_network_data_is_one_warning_and_the_fallback(caplog, raw, said):
    with caplog.at_level(logging.INFO):
        got = network.network_config("OpenStack", raw, "/seed/network-data", None, {})
    assert got is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert said in warnings[0].getMessage()
    assert "fallback network config (DHCP" in warnings[0].getMessage()


def test_a_provider_without_a_network_description_is_no_warning(caplog):
    with caplog.at_level(logging.INFO):
        assert network.network_config("GCE", b"{}", "/seed/network-data", None, {}) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
