"""The handler module's interface, without cloud-init.

What the handlers do under cloud-init is tested in tests/cloudinit; here,
the interface the shim re-exports and the promise that no fault escapes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from cloudinit_cernvm import handler_shim, handlers

REPO = Path(__file__).resolve().parents[2]


def test_shim_reexports_the_handlers():
    for name in ("list_types", "handle_part", "handler_version", "frequency"):
        assert getattr(handler_shim, name) is getattr(handlers, name)


def test_interface_cloud_init_reads():
    assert handlers.list_types() == [
        "text/amiconfig", "text/amiconfig-user-data", "text/ucernvm",
        "text/x-shellscript-before-amiconfig"]
    assert handlers.handler_version == 2
    assert handlers.frequency == "once-per-instance"


def test_a_fault_is_one_warning_never_an_exception(caplog):
    with caplog.at_level(logging.DEBUG):
        handlers.handle_part(None, "__begin__", None, None, "once-per-instance")
        handlers.handle_part(None, "text/ucernvm", "part-001",
                             "[ucernvm-begin]\na=b\n[ucernvm-end]\n", "once-per-instance")
        handlers.handle_part(None, "text/amiconfig", "part-002", b"[a]\n", "once-per-instance")
        handlers.handle_part(None, "__end__", None, None, "once-per-instance")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("CernVM: text/ucernvm handler failed on part-001: AttributeError")
    assert warnings[1].startswith("CernVM: __end__ handler failed on None: AttributeError")


def _modules_after(code: str) -> set[str]:
    """The package's modules a fresh interpreter holds after ``code``."""
    probe = (code + "\nimport sys\n"
             "print(' '.join(m for m in sys.modules if m.startswith('cloudinit_cernvm')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_loading_the_handlers_imports_no_converter_and_no_runner():
    # cloud-init imports the handlers whenever it consumes user-data, with
    # CernVM parts or without: they must cost next to nothing until a part comes.
    assert _modules_after("from cloudinit_cernvm import handler_shim") == {
        "cloudinit_cernvm", "cloudinit_cernvm.content_types", "cloudinit_cernvm.handler_shim",
        "cloudinit_cernvm.handlers"}


def test_a_before_script_part_brings_the_runner():
    loaded = _modules_after(
        "from cloudinit_cernvm import handlers\n"
        "handlers.handle_part(None, '__begin__', None, None)\n"
        "handlers.handle_part(None, 'text/x-shellscript-before-amiconfig', 'p', '#!/bin/sh\\n')\n"
        "assert handlers._current.scripts[0].name == 'p'\n")
    assert "cloudinit_cernvm.amiconfig" in loaded
    assert "cloudinit_cernvm.userdata" not in loaded


class _Datasource:
    seed_dir = None
    provider = "EC2"

    def __init__(self) -> None:
        self.metadata = {"instance-id": "i-unit", "local-hostname": "unit"}

    def get_public_ssh_keys(self):
        return ["ssh-ed25519 KEY u@h"]


class _Cloud:
    """What the handlers use of cloud-init's ``Cloud`` object."""

    def __init__(self, tmp_path: Path, command: list[str]) -> None:
        self.datasource = _Datasource()
        self.cfg = {"datasource": {"CernVM": {
            "amiconfig_command": command, "amiconfig_done_file": str(tmp_path / "user.done"),
            "extra_user_data": str(tmp_path / "extra-user-data")}}}
        self.paths = type("Paths", (), {"run_dir": str(tmp_path / "run")})()
        self._ipath = tmp_path / "instance"

    def get_ipath(self) -> str:
        return str(self._ipath)

    def get_instance_id(self) -> str:
        return "i-unit"


def _consume(cloud: _Cloud, parts: list[tuple[str, str]]) -> None:
    handlers.handle_part(cloud, "__begin__", None, None, "once-per-instance")
    for ctype, text in parts:
        handlers.handle_part(cloud, ctype, "part", text, "once-per-instance")
    handlers.handle_part(cloud, "__end__", None, None, "once-per-instance")


def test_amiconfig_runs_at_the_first_end_of_an_instance_only(tmp_path, monkeypatch):
    record = tmp_path / "record"
    cfg = tmp_path / "default.cfg"
    cfg.write_text("[general]\nenabled_plugins = rootsshkeys\ndisabled_plugins =\n")
    fake = REPO / "tests" / "fakes" / "amiconfig"
    cloud = _Cloud(tmp_path, [sys.executable, str(fake), "-c", str(cfg)])
    monkeypatch.setenv("FAKE_AMICONFIG_RECORD", str(record))
    _consume(cloud, [])  # the user-data: no amiconfig part; amiconfig runs anyway
    assert (record / "count").read_text() == "1\n"
    assert (tmp_path / "user.done").exists()
    # cloud-init's vendor-data pass calls __begin__/__end__ again: nothing more runs
    (tmp_path / "user.done").unlink()
    _consume(cloud, [("text/amiconfig", "[amiconfig]\nplugins = condor\n")])
    assert (record / "count").read_text() == "1\n"
