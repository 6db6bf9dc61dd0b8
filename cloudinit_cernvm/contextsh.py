"""Reading the user-data out of a HEPiX/OpenNebula ``context.sh``.

People keep their contexts in the ``context.sh`` of a context CD, where
the user-data is base64 in ``EC2_USER_DATA`` (CernVM, HEPiX) or in
``USER_DATA``/``USERDATA`` with ``USERDATA_ENCODING``. ``cernvm-context``
accepts such a file wherever it accepts user-data. The file is data: it is
parsed here, never sourced or run.

The microboot stage reads the same files with its own reader (``context_vars``
in ``microboot/providers/opennebula.sh``, busybox awk); both follow the rules
below, and ``tests/data/contextsh-cases.json`` holds the cases that both must
read alike, so that ``validate context.sh`` checks what boots.

The rules: the text is split into commands and words as sh would split it,
but only assignments are understood:

- Commands end at an unquoted line end or ``;``; words at unquoted blanks
  (space, tab). A ``#`` that starts a word starts a comment up to the line
  end. Other shell syntax (``&``, ``|``, redirections, ``if``...) is not
  understood: its characters are word characters.
- Quoting: ``'...'`` keeps everything, line ends included (OpenNebula writes
  a quote as ``'\\''``); in ``"..."`` a backslash escapes ``\\ " $ ` `` and a
  line end (which then goes), and is kept before any other character; an
  unquoted backslash escapes the next character (a line end goes).
  ``$(...)`` and ``` `...` ``` are kept as text, never run.
- A command's words are read from the first: ``NAME=value`` (NAME unquoted,
  at most 128 characters) assigns ``value``; ``export`` is skipped and so,
  after it, are bare names; at the first other word the rest of the command
  is skipped. The last assignment of a name wins.
- A text that does not end in a line end is read as if it did.
"""

from __future__ import annotations

import base64
import binascii
import re

#: the longest NAME read as one (no context variable comes near)
NAME_MAX = 128
#: where the user-data is, first found (set and not empty) first
USER_DATA_NAMES = ("EC2_USER_DATA", "USER_DATA", "USERDATA")

_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
# modes of the reader
_BETWEEN, _NAME, _WORD, _SINGLE, _DOUBLE, _BACKQUOTE, _PAREN, _COMMENT = range(8)
# per mode, the characters that mean something: the others are taken in runs
_STOPS = {
    _WORD: re.compile(r"[ \t;\\'\"`$\n]"),
    _SINGLE: re.compile(r"['\n]"),
    _DOUBLE: re.compile(r"[\"\\\n]"),
    _BACKQUOTE: re.compile(r"[`\n]"),
    _PAREN: re.compile(r"[()\n]"),
}


class _Reader:
    """The state of one reading: a character machine, the same as the
    microboot's awk, with runs of plain characters taken at once."""

    def __init__(self) -> None:
        self.variables: dict[str, str] = {}
        self.other_commands = False
        self.mode = _BETWEEN
        self.skip = False          # the command had a word that is no assignment
        self.export = False        # the command had "export"
        self.escaped = False       # an unquoted backslash waits for its character
        self.dq_escaped = False    # a backslash in double quotes waits
        self.dollar = False        # an unquoted "$" waits: "(" starts $(...)
        self.depth = 0
        self.name = ""
        self.value: list[str] | None = None   # the assignment being read

    def put(self, text: str) -> None:
        if self.value is not None:
            self.value.append(text)

    def word_end(self) -> None:
        if self.value is not None:
            self.variables[self.name] = "".join(self.value)
            self.value = None

    def command_end(self) -> None:
        self.skip = self.export = False
        self.mode = _BETWEEN

    def to_skip(self) -> None:
        """The word is no assignment: it and the rest of the command go."""
        self.skip = self.other_commands = True
        self.mode = _WORD
        self.value = None

    def bare_name(self) -> None:
        """A word of name characters alone ended."""
        if self.name == "export":
            self.export = True
        elif not self.export:
            self.skip = self.other_commands = True

    def char(self, c: str) -> None:
        mode = self.mode
        if c == "\n":
            self.line_end()
            return
        if mode == _BETWEEN:
            if self.escaped:                       # a word starting with "\x"
                self.escaped = False
                self.to_skip()
                return
            if c in " \t":
                return
            if c == ";":
                self.command_end()
                return
            if c == "#":
                self.mode = _COMMENT
                return
            if c == "\\":
                self.escaped = True
                return
            if self.skip:
                self.mode = _WORD
                self.word(c)
                return
            self.mode, self.name = _NAME, ""
            mode = _NAME
        if mode == _NAME:
            if self.escaped:
                self.escaped = False
                self.to_skip()
                return
            if c in _NAME_START or (self.name and c in _NAME_CHARS):
                self.name += c
                if len(self.name) > NAME_MAX:
                    self.to_skip()
                return
            if c == "=" and self.name:
                self.value = []
                self.mode = _WORD
                return
            if c in " \t;":
                self.bare_name()
                self.mode = _BETWEEN
                if c == ";":
                    self.command_end()
                return
            if c == "\\":
                self.escaped = True
                return
            self.to_skip()
            self.word(c)
            return
        if mode == _WORD:
            self.word(c)
        elif mode == _SINGLE:
            if c == "'":
                self.mode = _WORD
            else:
                self.put(c)
        elif mode == _DOUBLE:
            if self.dq_escaped:
                self.dq_escaped = False
                self.put(c if c in '\\"$`' else "\\" + c)
            elif c == "\\":
                self.dq_escaped = True
            elif c == '"':
                self.mode = _WORD
            else:
                self.put(c)
        elif mode == _BACKQUOTE:
            self.put(c)
            if c == "`":
                self.mode = _WORD
        elif mode == _PAREN:
            self.put(c)
            if c == "(":
                self.depth += 1
            elif c == ")":
                self.depth -= 1
                if self.depth == 0:
                    self.mode = _WORD

    def word(self, c: str) -> None:
        if self.escaped:
            self.escaped = False
            self.put(c)
            return
        if self.dollar:
            self.dollar = False
            if c == "(":
                self.put(c)
                self.mode, self.depth = _PAREN, 1
                return
        if c in " \t":
            self.word_end()
            self.mode = _BETWEEN
        elif c == ";":
            self.word_end()
            self.command_end()
        elif c == "\\":
            self.escaped = True
        elif c == "'":
            self.mode = _SINGLE
        elif c == '"':
            self.mode = _DOUBLE
        elif c == "`":
            self.put(c)
            self.mode = _BACKQUOTE
        else:
            if c == "$":
                self.dollar = True
            self.put(c)

    def line_end(self) -> None:
        mode = self.mode
        if mode in (_BETWEEN, _NAME, _WORD) and self.escaped:
            self.escaped = False                   # a continued line
            return
        if mode == _NAME:
            self.bare_name()
            self.command_end()
        elif mode == _WORD:
            self.dollar = False
            self.word_end()
            self.command_end()
        elif mode in (_BETWEEN, _COMMENT):
            self.command_end()
        elif mode == _DOUBLE and self.dq_escaped:
            self.dq_escaped = False
        else:
            self.put("\n")

    def read(self, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        pos, end = 0, len(text)
        while pos < end:
            mode = self.mode
            if mode == _COMMENT:
                pos = text.index("\n", pos)
                self.line_end()
                pos += 1
                continue
            stop = _STOPS.get(mode)
            if stop is not None and not (self.escaped or self.dq_escaped or self.dollar):
                found = stop.search(text, pos)
                nxt = found.start() if found else end
                if nxt > pos:
                    self.put(text[pos:nxt])
                    pos = nxt
                    continue
            self.char(text[pos])
            pos += 1
        self.word_end()


def read(text: str) -> tuple[dict[str, str], bool]:
    """The variables a ``context.sh`` assigns, by the rules above, and
    whether it has other commands (that are skipped)."""
    reader = _Reader()
    reader.read(text)
    return reader.variables, reader.other_commands


def parse(text: str) -> dict[str, str] | None:
    """Return the variables of a ``context.sh``, or None if ``text`` is not one.

    A text is taken for a ``context.sh`` when it assigns something and has no
    command but assignments (and comments): a script or a cloud-config that
    happens to hold ``NAME=value`` lines is not read as one.
    """
    variables, other = read(text)
    if other or not variables:
        return None
    return variables


def setting(variables: dict[str, str], name: str) -> str:
    """A one-line setting (encoding, id, host name): the value up to its
    first line end, one control character (a CR) at its end cut, as the
    microboot reads it (``value`` in ``microboot/lib/common.sh``)."""
    value = variables.get(name, "").split("\n", 1)[0]
    return value[:-1] if value and (value[-1] < " " or value[-1] == "\x7f") else value


def user_data(variables: dict[str, str]) -> tuple[str, bytes] | None:
    """Return ``(variable name, user-data bytes)`` from context.sh variables.

    The first of ``USER_DATA_NAMES`` that is set and not empty holds it:
    ``EC2_USER_DATA`` is base64 (and is what µCernVM reads); ``USER_DATA``
    and ``USERDATA`` are base64 when ``USERDATA_ENCODING`` (else
    ``USER_DATA_ENCODING``, OpenNebula's other spelling) is ``base64``, as
    they are when it is empty. None when there is none.

    Raises ValueError (one line) when the variable's base64 is bad or the
    encoding unknown.
    """
    for name in USER_DATA_NAMES:
        value = variables.get(name, "")
        if not value:
            continue
        encoding = "base64"
        if name != "EC2_USER_DATA":
            key = "USERDATA_ENCODING" if "USERDATA_ENCODING" in variables else \
                "USER_DATA_ENCODING"
            encoding = setting(variables, key)
        if encoding == "":
            return name, value.encode("utf-8")
        if encoding != "base64":
            raise ValueError(f"context.sh: unknown {key} for {name}")
        try:
            return name, base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"context.sh: {name} is not valid base64") from None
    return None
