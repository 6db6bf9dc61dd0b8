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
