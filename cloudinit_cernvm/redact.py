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

import re

#: what stands where a secret was
HIDDEN = "(hidden)"

_WORDS = re.compile(r"[^A-Z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SECRET_WORDS = frozenset(
    {"PASS", "PWD", "PW", "PIN", "KEY", "KEYS", "AUTH", "AUTHORIZATION", "COOKIE",
     "SIG", "SIGNATURE", "OTP"}
)
_SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL",
                 "PRIVATE", "INJECT")
_PIN_NUMBERED = re.compile(r"PIN[0-9]+")

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@'\"]+@")
_QUERY = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&#\s'\"]+)=(?P<value>[^&#\s'\"]*)")
_VALUE = r"(?P<value>\"[^\"\n]*\"?|'[^'\n]*'?|[^\s,;&\"']+)"
# name = value, name: value, --name=value, "name": "value"
_ASSIGN = re.compile(
    r"(?P<name>(?<![\w.-])-{0,2}[A-Za-z_][\w.-]*)(?P<quote>[\"']?)"
    r"(?P<sep>[ \t]*[=:][ \t]*)" + _VALUE
)
# --name value, -name value (a command line)
_OPTION = re.compile(r"(?P<name>(?<![\w-])--?[A-Za-z][\w-]*)(?P<quote>)(?P<sep>[ \t]+)" + _VALUE)
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic|Digest)[ \t]+[A-Za-z0-9._~+/=-]+",
                          re.IGNORECASE)
_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)


def key_words(key: str) -> list[str]:
    """The words of a setting's name, upper case (see the module doc)."""
    return [w for w in _WORDS.split(_CAMEL.sub("_", key).upper()) if w]


def is_secret_key(key: str) -> bool:
    """Whether the value of the setting ``key`` must never be shown."""
    for word in key_words(key):
        if word in _SECRET_WORDS or word.endswith("KEY") or _PIN_NUMBERED.fullmatch(word):
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


def _hide_assignment(match: re.Match) -> str:
    name = match.group("name")
    if not is_secret_key(name.lstrip("-")) or match.group("value") == HIDDEN:
        return match.group(0)
    return f"{name}{match.group('quote')}{match.group('sep')}{HIDDEN}"


def redact_text(text: str) -> str:
    """``text`` with the credentials inside it hidden (the value rule of the module doc)."""
    if not text:
        return text
    text = _PEM_PRIVATE.sub(HIDDEN, text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{HIDDEN}@", text)
    text = _QUERY.sub(_hide_query, text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {HIDDEN}", text)
    text = _ASSIGN.sub(_hide_assignment, text)
    return _OPTION.sub(_hide_assignment, text)
