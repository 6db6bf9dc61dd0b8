"""Registers this project's part-handlers with cloud-init.

cloud-init has no setting for part-handlers: it imports every module in its
handlers directory (``/var/lib/cloud/handlers/``) that defines ``list_types``
and ``handle_part``. The package installs this file there as
``cernvm_handlers.py`` (and the datasource puts it back if ``cloud-init
clean`` removed it). It only re-exports the handlers of the package, so that
the code lives, and is upgraded, in one place.

If the package has been removed, the shim handles nothing instead of
breaking cloud-init's user-data processing.
"""

try:
    from cloudinit_cernvm.handlers import (
        frequency,
        handle_part,
        handler_version,
        list_types,
    )
except ImportError:  # the package is gone; stay harmless

    handler_version = 2
    frequency = "once-per-instance"

    def list_types() -> list:
        """Handle nothing: the package that held the handlers is gone."""
        return []

    def handle_part(*_args, **_kwargs) -> None:
        """Never called: no type is listed."""
