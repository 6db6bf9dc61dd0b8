"""The handler module's interface, without cloud-init.

What the handlers do under cloud-init is tested in tests/cloudinit; here,
the interface the shim re-exports and the promise that no fault escapes.
"""

from __future__ import annotations

import logging

from cloudinit_cernvm import handler_shim, handlers


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
