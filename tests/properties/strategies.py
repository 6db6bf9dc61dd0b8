"""Hypothesis strategies for old-syntax documents and hostile user-data.

A generated document is a list of ``(kind, lines)`` sections; ``render``
joins them into the text a user would write, so that properties can check
what became of each section.
"""

from __future__ import annotations

import base64
import gzip
import re

from hypothesis import strategies as st

from cloudinit_cernvm import ucernvm

_EXIT = re.compile(r"exit(?:[ \t;].*)?$")
_HEADER = re.compile(r"\[([^\]\s]+)\][ \t]*$")

# Any character but line ends and lone surrogates (user-data is UTF-8 text).
_chars = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
)
free_line = st.text(_chars, max_size=40)
#: printable ASCII only: what cloud-init's MIME parsing hands on byte for byte
ascii_line = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
name = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)


def _not_special(line: str) -> bool:
    return line not in (ucernvm.BEGIN, ucernvm.END) and line.rstrip() != "#cloud-config"


def documents(line: st.SearchStrategy[str] = free_line) -> st.SearchStrategy:
    """Old-syntax documents whose free text is drawn from ``line``.

    A document is an optional script, then sections in any order; a
    cloud-config section is only followed by one that starts with a header
    line (YAML runs to the next header, so a second ``#cloud-config`` line
    is a comment in the first: such sections are joined).
    """
    ini_line = st.one_of(
        st.builds(lambda k, v: f"{k} = {v}", name, line),
        st.builds(lambda k, v: f"{k}={v}", name, line),
        st.just(""),
        st.builds(lambda c: "# " + c, line),
        line,
    ).filter(_not_special)
    ini_section = st.builds(
        lambda header, body: ("ini", [f"[{header}]", *body]), name, st.lists(ini_line, max_size=6)
    )
    block_line = st.one_of(st.builds(lambda k, v: f"{k}={v}", name, line), line).filter(
        lambda s: s != ucernvm.END
    )
    ucernvm_block = st.builds(
        lambda body: ("ucernvm", [ucernvm.BEGIN, *body, ucernvm.END]),
        st.lists(block_line, max_size=5),
    )
    yaml_line = st.one_of(
        st.builds(lambda k, v: f"{k}: {v}", name, line),
        st.builds(lambda v: f"  - {v}", line),
        line,
    ).filter(lambda s: not _HEADER.match(s))
    cloud_config = st.builds(
        lambda body: ("cloud-config", ["#cloud-config", *body]), st.lists(yaml_line, max_size=5)
    )
    script = st.builds(
        lambda first, body, last: ("script", [first, *body, last]),
        st.sampled_from(["#!/bin/sh", "#!/bin/bash", "#!/bin/sh.before", "#!/bin/sh.after"]),
        st.lists(line.filter(lambda s: not _EXIT.match(s)), max_size=5),
        st.sampled_from(["exit", "exit 0", "exit $rc"]),
    )

    @st.composite
    def document(draw) -> list[tuple[str, list[str]]]:
        sections: list[tuple[str, list[str]]] = []
        if draw(st.booleans()):
            sections.append(draw(script))
        for section in draw(
            st.lists(st.one_of(ini_section, ucernvm_block, cloud_config), min_size=1, max_size=6)
        ):
            if section[0] == "cloud-config" and sections and sections[-1][0] == "cloud-config":
                sections[-1] = ("cloud-config", sections[-1][1] + section[1])
            else:
                sections.append(section)
        return sections

    return document()


old_syntax = documents


def render(
    sections: list[tuple[str, list[str]]], crlf: bool = False, final_newline: bool = True
) -> str:
    text = "\n".join(line for _, lines in sections for line in lines)
    if final_newline:
        text += "\n"
    return text.replace("\n", "\r\n") if crlf else text


# --- hostile input -----------------------------------------------------------

_VOCABULARY = [
    "[ucernvm-begin]",
    "[ucernvm-end]",
    "[ucernvm-begin] ",
    "#cloud-config",
    "#!/bin/sh",
    "#!/bin/sh.before",
    "#!/bin/sh.after",
    "exit",
    "[amiconfig]",
    "plugins = cernvm",
    "[cernvm]",
    "users = a:b:c",
    "cvmfs_http_proxy=DIRECT",
    "key=va=lue",
    'Content-Type: multipart/mixed; boundary="b"',
    "Content-Type: multipart/mixed; boundary=b",
    "Content-Type: text/amiconfig",
    "Content-Type: text/ucernvm; charset=utf-8",
    "Content-Type: text/plain",
    "Content-Type: application/x-gzip",
    "Content-Transfer-Encoding: base64",
    "Content-Transfer-Encoding: quoted-printable",
    "MIME-Version: 1.0",
    "From nobody Tue Jun 10 10:41:07 2014",
    "--b",
    "--b--",
    "--c",
    base64.b64encode(b"[cernvm]\nx=1\n").decode(),
    "W2Nlcm52bV0K=",
    "=3D=\t",
    "a: [1",
    "  - x",
    "## template: jinja",
    "#include",
    "",
    " ",
    "\t",
    "µ€ü",
]


@st.composite
def line_soup(draw) -> bytes:
    lines = draw(st.lists(st.one_of(st.sampled_from(_VOCABULARY), free_line), max_size=25))
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = sep.join(lines) + draw(st.sampled_from(["", sep]))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def mime_doc(draw) -> bytes:
    boundary = draw(st.sampled_from(["b", "==x==", "a b"]))
    out = [f'Content-Type: multipart/mixed; boundary="{boundary}"\nMIME-Version: 1.0\n\n']
    for _ in range(draw(st.integers(0, 4))):
        ctype = draw(
            st.sampled_from(
                [
                    "text/amiconfig",
                    "text/ucernvm",
                    "text/plain",
                    "text/x-shellscript",
                    "text/cloud-config",
                    "application/octet-stream",
                    "text/amiconfig-user-data",
                ]
            )
        )
        body = render(draw(old_syntax())) if draw(st.booleans()) else draw(free_line)
        cte = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable"]))
        if cte == "base64":
            body = base64.encodebytes(body.encode("utf-8", "surrogatepass")).decode()
        out.append(
            f"--{boundary}\nContent-Type: {ctype}\nContent-Transfer-Encoding: {cte}\n\n{body}\n"
        )
    if draw(st.booleans()):
        out.append(f"--{boundary}--\n")
    return "".join(out).encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.one_of(mime_doc(), line_soup())))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


hostile = st.one_of(
    st.binary(max_size=600),
    line_soup(),
    mime_doc(),
    mutated(),
    st.builds(lambda s: render(s).encode(), old_syntax()),
    st.builds(lambda b: gzip.compress(b, mtime=0), st.one_of(line_soup(), st.binary(max_size=200))),
    st.builds(lambda b: gzip.compress(b, mtime=0)[: max(2, len(b) // 2)], st.binary(max_size=200)),
)
