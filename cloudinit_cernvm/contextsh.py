"""Reading the user-data out of a HEPiX/OpenNebula ``context.sh``.

People keep their contexts in the ``context.sh`` of a context CD, where
the user-data is base64 in ``EC2_USER_DATA`` (CernVM, HEPiX) or in
``USER_DATA``/``USERDATA`` with ``USERDATA_ENCODING``. ``cernvm-context``
accepts such a file wherever it accepts user-data. The file is data: it is
parsed here, never sourced or run.
"""

from __future__ import annotations

import base64
import binascii
import re

_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_DOUBLE_ESCAPES = re.compile(r"\\([\\\"$`])")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _DOUBLE_ESCAPES.sub(r"\1", value[1:-1])
    return value


def parse(text: str) -> dict[str, str] | None:
    """Return the variables of a ``context.sh``, or None if ``text`` is not one.

    Only single-line ``NAME=value`` assignments (quoted or not) are read;
    a text with any other non-comment line is not a ``context.sh``.
    """
    variables: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.match(stripped)
        if not match:
            return None
        variables[match.group(1)] = _unquote(match.group(2))
    return variables or None


def user_data(variables: dict[str, str]) -> tuple[str, bytes] | None:
    """Return ``(variable name, user-data bytes)`` from context.sh variables.

    Raises ValueError (one line) when the variable's base64 is bad.
    """
    for name in ("EC2_USER_DATA", "USER_DATA", "USERDATA"):
        if name not in variables:
            continue
        value = variables[name]
        encoded = (
            name == "EC2_USER_DATA" or variables.get("USERDATA_ENCODING", "").lower() == "base64"
        )
        if not encoded:
            return name, value.encode("utf-8")
        try:
            return name, base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"context.sh: {name} is not valid base64") from None
    return None
