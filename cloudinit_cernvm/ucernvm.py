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

µCernVM prints ``_UCONTEXT_KEY=value`` unquoted and sources it, so a value
wholly inside one pair of quotes (``cvmfs_http_proxy="a;b"``) reached its
scripts without them, and any other value with a blank or a ``$(...)`` ran a
command. The microboot stage writes each value as one sh word instead
(:func:`shell_word`): sourcing gives the value and runs nothing. Values here
are what the scripts see: the pair of quotes taken off (:func:`sourced_value`).

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

import re

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
#: a value written bare: nothing in it that sh would expand, split or run
_PLAIN = re.compile(r"[A-Za-z0-9_./:,+=@%-]*")
#: a word of a ucontext line read back: bare characters, '...' and "..."
#: without expansions, \x escapes; a value of any other form is kept as written
_WORD = re.compile(r"""(?:[A-Za-z0-9_./:,+=@%-]+|'[^']*'|"[^"$`\\]*"|\\.)*""")
_PIECE = re.compile(r"""[A-Za-z0-9_./:,+=@%-]+|'([^']*)'|"([^"]*)"|\\(.)""")
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


def sourced_value(value: str) -> str:
    """The value µCernVM's scripts see: one pair of quotes around it taken off.

    Sourcing the unquoted line that µCernVM writes takes them off; a value
    with more quotes is kept as written.
    """
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0] \
            and value[0] not in value[1:-1]:
        return value[1:-1]
    return value


def shell_word(value: str) -> str:
    """``value`` as one sh word that yields it when sourced and runs nothing.

    Bare when nothing in it is special to sh (what µCernVM wrote), else in
    single quotes. The microboot stage's writer (``shq`` in lib/formats.sh)
    follows the same rule.
    """
    if _PLAIN.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def _read_word(word: str) -> str:
    """A value of a ucontext line as sourcing gives it, when it is a plain word.

    Takes the stage's quoting and an older µCernVM's unquoted value alike;
    anything that sh would expand or split is kept as written.
    """
    if not _WORD.fullmatch(word):
        return word
    out = []
    for piece in _PIECE.finditer(word):
        single, double, escaped = piece.groups()
        out.append(single if single is not None else double if double is not None
                   else escaped if escaped is not None else piece.group(0))
    return "".join(out)


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
    as sourcing µCernVM's ``ucontext`` file would; values as its scripts see
    them (:func:`sourced_value`).
    """
    return {PREFIX + key.upper(): sourced_value(convert_value(value))
            for _, key, value in block_lines(text)}


def format_ucontext(settings: dict[str, str]) -> str:
    """Return settings as ``_UCONTEXT_KEY=value`` lines, each value one sh word."""
    return "".join(f"{key}={shell_word(value)}\n" for key, value in settings.items())


def parse_ucontext(text: str) -> dict[str, str]:
    """Read a ``ucontext`` file: ``_UCONTEXT_KEY=value`` lines.

    Other lines (blank, comments, anything without the prefix) are skipped:
    the file is data and is never sourced here. Values are read as sourcing
    gives them where that runs nothing (quotes taken off), else verbatim.
    """
    settings: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(PREFIX) and "=" in line:
            key, value = line.split("=", 1)
            settings[key] = _read_word(value)
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
