"""The Azure ready report against the fake wireserver: the goal state read,
the Health document's fields, the headers, once per instance, the bound."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from cloudinit_cernvm import azure_ready
from tests.fakes.metadata import MetadataService
from tests.fakes.wireserver import CONTAINER_ID, INCARNATION, INSTANCE_ID, Wireserver


def test_report_names_the_goal_state() -> None:
    with Wireserver() as ws:
        goal = azure_ready.report_ready(ws.endpoint)
    assert (goal.container_id, goal.instance_id, goal.incarnation) == \
        (CONTAINER_ID, INSTANCE_ID, INCARNATION)
    assert ws.parsed() == [{"GoalStateIncarnation": INCARNATION, "ContainerId": CONTAINER_ID,
                            "InstanceId": INSTANCE_ID, "State": "Ready"}]
    assert [(r.method, r.path, r.status) for r in ws.requests] == [
        ("GET", "/machine/?comp=goalstate", 200), ("POST", "/machine?comp=health", 200)]
    for r in ws.requests:
        assert r.headers["x-ms-agent-name"] == "WALinuxAgent"
        assert r.headers["x-ms-version"] == "2012-11-30"
    assert ws.requests[1].headers["content-type"] == "text/xml; charset=utf-8"


def test_once_per_instance(tmp_path: Path) -> None:
    records = tmp_path / "instance" / "cernvm"
    with Wireserver() as ws:
        assert azure_ready.report_once(str(records), {"azure_wireserver": ws.endpoint})
        assert azure_ready.report_once(str(records), {"azure_wireserver": ws.endpoint})
    assert len(ws.reports) == 1
    marker = records / "azure-ready"
    assert marker.stat().st_mode & 0o777 == 0o600
    assert marker.read_text().split() == [CONTAINER_ID, INSTANCE_ID, INCARNATION]


def test_failure_is_one_warning_and_no_marker(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with Wireserver(health_status=400) as ws, caplog.at_level(logging.INFO):
        assert not azure_ready.report_once(str(tmp_path), {"azure_wireserver": ws.endpoint})
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "status 400" in warnings[0].getMessage()
    assert not (tmp_path / "azure-ready").exists()


def test_turned_off(tmp_path: Path) -> None:
    with Wireserver() as ws:
        assert not azure_ready.report_once(str(tmp_path), {"azure_wireserver": ws.endpoint,
                                                           "azure_ready": False})
    assert ws.requests == []


def test_bounded_against_a_silent_wireserver() -> None:
    assert azure_ready.BUDGET_S == 10.0
    with MetadataService("silent") as svc:
        start = time.monotonic()
        with pytest.raises(azure_ready.ReportError):
            azure_ready.report_ready(svc.url.split("//", 1)[1], budget=2.0)
        took = time.monotonic() - start
    assert took < 2.6


def test_retries_a_refused_connection_within_the_budget() -> None:
    start = time.monotonic()
    with pytest.raises(azure_ready.ReportError):
        azure_ready.report_ready("127.0.0.1:9", budget=2.5)
    assert 1.0 <= time.monotonic() - start < 3.0


@pytest.mark.parametrize("text, want", [
    ("lease {\n  option unknown-245 a8:3f:81:10;\n}\n", "168.63.129.16"),
    ("lease {\n  option unknown-245 a:0:0:1;\n}\n", "10.0.0.1"),
    ("ADDRESS=10.0.0.4\nOPTION_245=a83f8110\n", "168.63.129.16"),
    ("lease {\n  option routers 10.0.0.1;\n}\n", None),
])
def test_wireserver_from_dhcp_option_245(tmp_path: Path, text: str, want: str | None) -> None:
    d = tmp_path / ("run/systemd/netif/leases" if "OPTION" in text else "var/lib/dhcp")
    d.mkdir(parents=True)
    (d / "dhclient.eth0.leases").write_text(text)
    assert azure_ready.wireserver_from_leases(str(tmp_path)) == want


@pytest.mark.parametrize("xml, missing", [
    (b"<GoalState><Incarnation>1</Incarnation></GoalState>", "Container/ContainerId"),
    (b"not xml", None),
])
def test_bad_goal_state(xml: bytes, missing: str | None) -> None:
    with pytest.raises(azure_ready.ReportError) as err:
        azure_ready.parse_goal_state(xml)
    assert (missing or "no XML") in str(err.value)
