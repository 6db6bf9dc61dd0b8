"""The µCernVM block of user-data, read exactly as µCernVM reads it.

µCernVM (the bootloader) scans the raw user-data for a block::

    [ucernvm-begin]
    key=value
    [ucernvm-end]

and writes each setting as a ``_UCONTEXT_KEY=value`` line into the seed's
``ucontext`` file, which its boot scripts source. This module reproduces
that reading (so that what the handlers record agrees with what µCernVM
did), reads ``ucontext`` files, and knows the keys µCernVM's scripts use,
so that ``cernvm-context validate`` can point out a misspelt one.

The rules, as µCernVM's ``parse_user_data`` applies them:

- marker lines match exactly (no surrounding blanks, no CR);
- only the first block counts: reading stops at the first
  ``[ucernvm-end]`` line (even one before any ``[ucernvm-begin]``);
- a line counts only once its newline is read (an unterminated last line
  is ignored);
- each line is split at the first ``=``; lines without ``=`` are ignored;
- the key is upper-cased (nothing is stripped) and prefixed ``_UCONTEXT_``;
- values yes/on/true become ``1`` and no/off/false become ``0``, in any
  case; other values are kept as they are (``cernvm_inject`` is base64
  and may itself contain ``=``).

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

BEGIN = "[ucernvm-begin]"
END = "[ucernvm-end]"
PREFIX = "_UCONTEXT_"

#: Keys µCernVM's boot scripts read (as users write them; matching ignores
#: case, since µCernVM upper-cases keys).
KNOWN_KEYS: frozenset[str] = frozenset(
    {
        "resize_rootfs",  # use all of the disk as root partition (on/off)
        "use_boothd",  # put the root partition on the boot disk (on/off)
        "cvmfs_http_proxy",  # CernVM-FS proxy list
        "cvmfs_pac_urls",  # proxy auto-configuration URLs
        "cvmfs_server",  # Stratum 1 servers, comma-separated
        "cvmfs_cdn",  # content-delivery network for the OS repository
        "cvmfs_branch",  # the OS repository (e.g. cernvm-prod.cern.ch)
        "cvmfs_tag",  # an OS snapshot name
        "cvmfs_wait_on_squid",  # seconds to wait for a proxy before mounting
        "cernvm_path",  # path of the OS inside the repository
        "cernvm_inject",  # base64 .tar.gz unpacked over the root tree
        "useglideinWMS",  # glideinWMS user-data auto-detection (on/off)
        "cvm_cluster_pin",  # cluster contextualization: cluster PIN
        "cvm_cluster_master",  # cluster contextualization: this VM is master
        "cvm_service_url",  # cluster contextualization service URL
    }
)

_KNOWN_UPPER = {key.upper(): key for key in KNOWN_KEYS}
_TRUE = frozenset({"YES", "ON", "TRUE"})
_FALSE = frozenset({"NO", "OFF", "FALSE"})


def convert_value(value: str) -> str:
    """Map yes/on/true to ``1`` and no/off/false to ``0`` (any case)."""
    upper = value.upper()
    if upper in _TRUE:
        return "1"
    if upper in _FALSE:
        return "0"
    return value


def block_lines(text: str) -> list[tuple[int, str, str]]:
    """Return ``(line_number, key, value)`` for each setting µCernVM reads.

    ``key`` and ``value`` are as written (not upper-cased, not converted);
    line numbers start at 1. Follows the rules in the module docstring, so
    lines µCernVM ignores are not returned.
    """
    found: list[tuple[int, str, str]] = []
    inside = False
    lines = text.split("\n")
    # The last element is what follows the last newline: never a full line.
    for number, line in enumerate(lines[:-1], start=1):
        if line == BEGIN:
            inside = True
            continue
        if line == END:
            break
        if inside and "=" in line:
            key, value = line.split("=", 1)
            found.append((number, key, value))
    return found


def parse_block(text: str) -> dict[str, str]:
    """Return the settings µCernVM takes from ``text``.

    Keys are ``_UCONTEXT_<KEY>``; a key given twice keeps its last value,
    as sourcing µCernVM's ``ucontext`` file would.
    """
    return {PREFIX + key.upper(): convert_value(value) for _, key, value in block_lines(text)}


def format_ucontext(settings: dict[str, str]) -> str:
    """Return settings as ``_UCONTEXT_KEY=value`` lines, as µCernVM writes them."""
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def parse_ucontext(text: str) -> dict[str, str]:
    """Read a ``ucontext`` file: ``_UCONTEXT_KEY=value`` lines.

    Other lines (blank, comments, anything without the prefix) are skipped:
    the file is data and is never sourced here. Values are kept verbatim.
    """
    settings: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(PREFIX) and "=" in line:
            key, value = line.split("=", 1)
            settings[key] = value
    return settings


def is_known(key: str) -> bool:
    """Tell whether µCernVM's scripts read ``key`` (case ignored)."""
    return key.upper() in _KNOWN_UPPER


def suggest(key: str) -> str | None:
    """Return the known key ``key`` was most likely meant to be, or None.

    ``cvmfs_proxy`` gives ``cvmfs_http_proxy``. Matching ignores case and
    surrounding blanks.
    """
    import difflib  # only for a key that is not known: the boot path rarely needs it

    wanted = key.strip().upper()
    if wanted in _KNOWN_UPPER:
        return _KNOWN_UPPER[wanted]
    close = difflib.get_close_matches(wanted, list(_KNOWN_UPPER), n=1, cutoff=0.6)
    return _KNOWN_UPPER[close[0]] if close else None
