"""Keep secrets out of log lines, records and messages: one set of rules.

User-data carries passwords, tokens, cluster PINs and proxies with
credentials in them. Every message that may quote user-data (the µCernVM
differences, MIME errors, template errors, amiconfig's output, ``show``)
goes through this module, so that what counts as a secret is decided once.

Two rules:

- **by key** (:func:`is_secret_key`): the value of a setting whose name
  looks secret is never shown. A name is cut into words at ``_``, ``-``,
  ``.``, blanks and lower-to-upper case changes (``accessKeyId`` is
  ``ACCESS KEY ID``); it is secret when a word is ``PASS``, ``PWD``, ``PW``,
  ``PIN`` (also ``PIN2``), ``KEY``/``KEYS`` or ends with ``KEY``
  (``APIKEY``, ``SSHKEY``), ``AUTH``, ``AUTHORIZATION``, ``COOKIE``,
  ``SIG``/``SIGNATURE``, ``OTP``, or contains ``PASSWORD``, ``PASSWD``,
  ``PASSPHRASE``, ``SECRET``, ``TOKEN``, ``CREDENTIAL``, ``PRIVATE`` or
  ``INJECT`` (``cernvm_inject`` carries files). Words that merely start
  with ``KEY`` (``keyboard``, ``keymap``) or ``PIN`` (``pinned``) are not
  secret: they name layouts and versions that a reader needs to see.
  Certificates (``cert``) are public and stay readable; a private key
  inside any value is caught by the value rule below.
- **inside values** (:func:`redact_text`): whatever the key, a text loses
  the userinfo of URLs (``http://user:pw@proxy`` becomes
  ``http://(hidden)@proxy``), the values of secret-named query parameters
  (``?access_token=...``), of secret-named options and assignments
  (``--password=...``, ``--token ...``, ``PIN=...``, ``"secret": "..."``),
  the credentials of ``Bearer``/``Basic`` authorisations and PEM private
  key blocks. Everything else (``cvmfs_http_proxy=http://squid:3128``) stays
  readable: a message that hides too much cannot be acted upon.

Standard library only, and cheap to import: the boot path uses it.
"""

from __future__ import annotations

import functools
import re

#: what stands where a secret was
HIDDEN = "(hidden)"

_SECRET_WORDS = frozenset(
    {"PASS", "PWD", "PW", "PIN", "KEY", "KEYS", "AUTH", "AUTHORIZATION", "COOKIE",
     "SIG", "SIGNATURE", "OTP"}
)
#: values that stand for a value in advice ("write key=value"): nothing to hide
_PLACEHOLDERS = frozenset({HIDDEN, "value", "VALUE", "<value>", "...", ""})
_SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL",
                 "PRIVATE", "INJECT")


class _Patterns:
    """The regular expressions, compiled on first use, not on import.

    Compiling them costs a few milliseconds, which every cloud-init process
    that imports this module would pay, most of them without a message to
    redact.
    """

    def __init__(self) -> None:
        # the value after a secret key: a quoted string, or up to a blank or separator
        self.value = re.compile(r"\"[^\"\n]*\"?|'[^'\n]*'?|[^\s,;&\"']+")
        self.words = re.compile(r"[^A-Z0-9]+")
        self.camel = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
        self.pin_numbered = re.compile(r"PIN[0-9]+")
        # Every pattern starts only where its run of characters starts (the
        # look-behinds) and stops at the next start: linear on any text.
        self.url_userinfo = re.compile(
            r"(?P<scheme>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@'\"]+@"
        )
        self.query = re.compile(
            r"(?P<lead>[?&;])(?P<name>[^=&#?;\s'\"]+)=(?P<value>[^&#?;\s'\"]*)"
        )
        # name = value, name: value, --name=value, "name": "value" (up to the value)
        self.assign = re.compile(
            r"(?P<name>(?<![\w.-])-{0,2}[A-Za-z_][\w.-]*)[\"']?[ \t]*[=:][ \t]*"
        )
        # --name value, -name value (a command line)
        self.option = re.compile(r"(?P<name>(?<![\w-])--?[A-Za-z][\w-]*)[ \t]+")
        self.auth_scheme = re.compile(
            r"\b(?P<scheme>Bearer|Basic|Digest)[ \t]+[A-Za-z0-9._~+/=-]+", re.IGNORECASE
        )
        self.pem_begin = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----")
        self.pem_end = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----")


_compiled: _Patterns | None = None


def _rx() -> _Patterns:
    global _compiled
    if _compiled is None:
        _compiled = _Patterns()
    return _compiled


def key_words(key: str) -> list[str]:
    """The words of a setting's name, upper case (see the module doc)."""
    rx = _rx()
    return [w for w in rx.words.split(rx.camel.sub("_", key).upper()) if w]


@functools.lru_cache(maxsize=1024)  # a text repeats its keys
def is_secret_key(key: str) -> bool:
    """Whether the value of the setting ``key`` must never be shown."""
    for word in key_words(key):
        if word in _SECRET_WORDS or word.endswith("KEY") or _rx().pin_numbered.fullmatch(word):
            return True
        if any(part in word for part in _SECRET_PARTS):
            return True
    return False


def shown(key: str, value: str) -> str:
    """``value`` of ``key`` as a message may quote it: hidden, or redacted inside."""
    return HIDDEN if is_secret_key(key) else repr(redact_text(value))


def _hide_query(match: re.Match) -> str:
    if is_secret_key(match.group("name")):
        return f"{match.group('lead')}{match.group('name')}={HIDDEN}"
    return match.group(0)


def _hide_assignments(rx: _Patterns, pattern: re.Pattern, text: str) -> str:
    """Hide the values that follow a secret-named key found by ``pattern``.

    ``pattern`` finds a key and its separator; only after a secret key is
    the value read (and skipped), so that every character is looked at a
    bounded number of times whatever the text, and in ``noip: password = x``
    the search goes on where the secret key starts.
    """
    out: list[str] = []
    pos = 0
    while True:
        match = pattern.search(text, pos)
        if match is None:
            break
        out.append(text[pos:match.end()])
        pos = match.end()
        if not is_secret_key(match.group("name").lstrip("-")):
            continue
        value = rx.value.match(text, pos)
        if value is not None and value.group(0).strip("\"'") not in _PLACEHOLDERS:
            out.append(HIDDEN)
            pos = value.end()
    out.append(text[pos:])
    return "".join(out)


def _hide_private_keys(rx: _Patterns, text: str) -> str:
    """PEM private key blocks hidden, an unterminated one to the end of the text."""
    out: list[str] = []
    pos = 0
    while True:
        begin = rx.pem_begin.search(text, pos)
        if begin is None:
            break
        out.append(text[pos:begin.start()] + HIDDEN)
        end = rx.pem_end.search(text, begin.end())
        if end is None:
            return "".join(out)
        pos = end.end()
    out.append(text[pos:])
    return "".join(out)


def redact_text(text: str) -> str:
    """``text`` with the credentials inside it hidden (the value rule of the module doc)."""
    if not text:
        return text
    rx = _rx()
    text = _hide_private_keys(rx, text)
    text = rx.url_userinfo.sub(lambda m: f"{m.group('scheme')}{HIDDEN}@", text)
    text = rx.query.sub(_hide_query, text)
    text = rx.auth_scheme.sub(lambda m: f"{m.group('scheme')} {HIDDEN}", text)
    text = _hide_assignments(rx, rx.assign, text)
    return _hide_assignments(rx, rx.option, text)
