"""NoCloud's meta-data as the datasource completes it.

The microboot stage has no YAML parser: it picks ``instance-id``,
``local-hostname`` and ``public-keys`` out of NoCloud's meta-data (YAML or
JSON) and keeps the whole file, base64, in ``nocloud-meta-data-base64``.
Here PyYAML reads that file and adds every key the stage did not set
(``dsmode``, ``network-interfaces``, a key in a shape the stage's reader
does not know...). The stage's values win: they include the kernel command
line's ``h=``/``i=``, which win in cloud-init too.
"""

from __future__ import annotations

import base64
import binascii
import logging

LOG = logging.getLogger(__name__)

RAW_KEY = "nocloud-meta-data-base64"


def merge_raw_meta(meta: dict) -> dict:
    """META with the raw file's other keys added and RAW_KEY gone; as it
    was (RAW_KEY kept, one warning) when the raw file cannot be read."""
    raw = meta.get(RAW_KEY)
    if not isinstance(raw, str):
        return meta
    import yaml  # deferred: NoCloud only

    try:
        loaded = yaml.safe_load(base64.b64decode(raw, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        LOG.warning("CernVM: NoCloud meta-data is neither YAML nor JSON; only the keys the"
                    " microboot stage read are used: %s", first)
        return meta
    out = {k: v for k, v in meta.items() if k != RAW_KEY}
    if loaded is None:
        return out
    if not isinstance(loaded, dict):
        LOG.warning("CernVM: NoCloud meta-data is a %s, not a mapping; only the keys the"
                    " microboot stage read are used", type(loaded).__name__)
        return meta
    for key, value in loaded.items():
        if isinstance(key, str) and key not in out:
            out[key] = value
    return out
