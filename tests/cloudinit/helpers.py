"""Assertions shared by the tests that boot real cloud-init."""

from __future__ import annotations

from tests.harness.sandbox import BootResult, Machine


def assert_clean_boot(machine: Machine, result: BootResult) -> None:
    """Every stage exited 0, no traceback, status done after a whole boot."""
    rel = f"cloud-init {machine.release}"
    for stage in result.stages:
        assert stage.returncode == 0, f"{rel}: {' '.join(stage.args)}: {stage.stderr[-1500:]}"
    assert "Traceback" not in machine.log, f"{rel}: traceback in cloud-init.log:\n{machine.log}"
    if ("modules", "--mode", "final") in [s.args for s in result.stages]:
        status = result.status or machine.cloud_init("status").stdout
        assert "status: done" in status, f"{rel}: {status}"


def cernvm_warnings(machine: Machine) -> list[str]:
    """The WARNING lines this project's datasource wrote to cloud-init.log."""
    return [
        line
        for line in machine.log.splitlines()
        if "[WARNING]" in line and "CernVM:" in line
    ]
