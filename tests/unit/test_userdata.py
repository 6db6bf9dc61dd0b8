"""Old syntax and MIME to normalised MIME: the rules of userdata.py, one by one."""

from __future__ import annotations

import base64
import email
import gzip
import re
from pathlib import Path

import pytest

from cloudinit_cernvm import gzip_input, mime_read, old_syntax, userdata
from cloudinit_cernvm.userdata import normalize
from cloudinit_cernvm.userdata_part import UserDataError

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def parts(mime: bytes) -> list[tuple[str, str, dict[str, str]]]:
    """(type, payload, headers) of each leaf part, parsed by the standard library."""
    msg = email.message_from_bytes(mime)
    assert msg.get_content_type() == "multipart/mixed"
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True).decode("utf-8")
        out.append((part.get_content_type(), payload, dict(part.items())))
    return out


def without_boundary(mime: bytes) -> bytes:
    boundary = re.search(rb'boundary="([^"]+)"', mime).group(1)
    return mime.replace(boundary, b"BOUNDARY")


def test_legacy_mixed_sample_every_section_in_its_part_in_order():
    out = normalize((SAMPLES / "legacy-mixed.txt").read_bytes())
    got = parts(out)
    assert [t for t, _, _ in got] == [
        "text/x-shellscript",
        "text/ucernvm",
        "text/amiconfig",
        "text/cloud-config",
    ]
    assert got[0][1] == '#!/bin/sh\necho "early setup" > /var/log/context-script.log\nexit\n'
    assert got[1][1] == (
        "[ucernvm-begin]\ncvmfs_branch=cernvm-prod.cern.ch\nresize_rootfs=off\n[ucernvm-end]\n"
    )
    assert got[2][1].startswith("[amiconfig]\nplugins = noip\n[noip]\n")
    assert got[3][1].startswith("#cloud-config\nresolv_conf:\n")
    assert "".join(p for _, p, _ in got) == (SAMPLES / "legacy-mixed.txt").read_text()


def test_legacy_ec2_sample_script_then_section():
    got = parts(normalize((SAMPLES / "legacy-ec2-cms.txt").read_bytes()))
    assert [t for t, _, _ in got] == ["text/x-shellscript", "text/amiconfig"]
    assert got[0][1].endswith("exit\n")
    assert got[1][1].startswith("[cernvm]\norganisations = cms\n")


def test_section_alone_becomes_one_amiconfig_part():
    got = parts(normalize((SAMPLES / "legacy-atlas-panda.txt").read_bytes()))
    assert [t for t, _, _ in got] == ["text/amiconfig"]
    assert got[0][1] == (SAMPLES / "legacy-atlas-panda.txt").read_text()


def test_slide_mime_with_wrong_boundary_is_refused_with_the_reason():
    with pytest.raises(UserDataError) as caught:
        normalize((SAMPLES / "mime-as-printed.txt").read_bytes())
    message = str(caught.value)
    assert "\n" not in message
    assert "'========1341993424=='" in message
    assert "'--===1341993424=='" in message


def test_before_marker_is_no_interpreter():
    out = normalize(b"#!/bin/sh.before\necho hi\nexit\n[cernvm]\nusers = a:b:c\n")
    got = parts(out)
    assert got[0][0] == "text/x-shellscript-before-amiconfig"
    assert got[0][1] == "#!/bin/sh\necho hi\nexit\n"
    assert got[0][2]["X-CernVM-Script"] == "before"
    assert got[1][0] == "text/amiconfig"


def test_after_marker_runs_as_plain_script_with_marker_header():
    got = parts(normalize(b"#!/bin/bash.after -e\necho hi\nexit 0\n"))
    assert got == [
        (
            "text/x-shellscript",
            "#!/bin/bash -e\necho hi\nexit 0\n",
            {
                "Content-Type": 'text/x-shellscript; charset="utf-8"',
                "MIME-Version": "1.0",
                "X-CernVM-Script": "after",
                "Content-Transfer-Encoding": "7bit",
            },
        )
    ]


def test_sections_before_between_and_after_ucernvm_block_keep_their_order():
    text = (
        "[amiconfig]\nplugins = cernvm\n"
        "[ucernvm-begin]\nresize_rootfs=on\n[ucernvm-end]\n"
        "[cernvm]\nusers = a:b:\n"
        "#cloud-config\nruncmd: [ls]\n"
        "[condor]\nlowport = 1\n"
    )
    got = parts(normalize(text.encode()))
    assert [t for t, _, _ in got] == [
        "text/amiconfig",
        "text/ucernvm",
        "text/amiconfig",
        "text/cloud-config",
        "text/amiconfig",
    ]
    assert "".join(p for _, p, _ in got) == text


def test_script_without_exit_keeps_everything_in_the_script():
    text = b"#!/bin/sh\ncat > /etc/x.ini <<EOF\n[main]\nk = v\nEOF\n"
    assert normalize(text) == text


def test_exit_ends_the_script_only_at_column_zero():
    text = "#!/bin/sh\nif true; then\n  exit 1\nfi\nexit\n[cernvm]\nx = 1\n"
    got = parts(normalize(text.encode()))
    assert got[0][1] == "#!/bin/sh\nif true; then\n  exit 1\nfi\nexit\n"


def test_crlf_becomes_lf_and_final_newline_is_added():
    got = parts(normalize(b"[cernvm]\r\nx = 1\r\n[ucernvm-begin]\r\ncvmfs_tag=t\r\n[ucernvm-end]"))
    assert got[0][1] == "[cernvm]\nx = 1\n"
    assert got[1][1] == "[ucernvm-begin]\ncvmfs_tag=t\n[ucernvm-end]\n"


def test_parts_are_text_never_base64_quoted_printable_only_when_needed():
    out = normalize("[cernvm]\nusers = jürgen:cms:\n#cloud-config\na: 1\n".encode())
    assert b"Content-Transfer-Encoding: base64" not in out
    # cloud-init's parser damages non-ASCII 8bit text: such parts go
    # quoted-printable, ASCII ones stay 7bit
    assert b"Content-Transfer-Encoding: quoted-printable" in out
    assert b"users =3D j=C3=BCrgen:cms:" in out
    assert b"Content-Transfer-Encoding: 7bit\n\n#cloud-config\na: 1\n" in out
    parts = mime_read.parse_parts(out)
    assert parts[0].payload == "[cernvm]\nusers = jürgen:cms:\n".encode()


def test_fresh_random_boundary_each_time():
    data = (SAMPLES / "legacy-mixed.txt").read_bytes()
    first, second = normalize(data), normalize(data)
    assert first != second
    assert without_boundary(first) == without_boundary(second)


@pytest.mark.parametrize(
    "data",
    [
        b"#cloud-config\npackages: [htop]\n",
        b"#!/bin/bash\necho plain\n",
        b"#!/bin/sh\necho plain\nexit 0\n\n",
        b"#include\nhttp://example.org/x\n",
        b"## template: jinja\n#cloud-config\n[cernvm]\n",
        b"",
        b"just some text\n",
        b"#cloud-config\r\na: 1\r\n",
    ],
)
def test_cloud_init_formats_pass_unchanged(data):
    assert normalize(data) == data


def test_gzip_is_decompressed():
    out = normalize(gzip.compress((SAMPLES / "legacy-ec2-cms.txt").read_bytes()))
    assert [t for t, _, _ in parts(out)] == ["text/x-shellscript", "text/amiconfig"]


def test_gzip_of_cloud_init_format_passes_decompressed():
    assert normalize(gzip.compress(b"#cloud-config\na: 1\n")) == b"#cloud-config\na: 1\n"


def test_gzip_bomb_is_refused():
    bomb = gzip.compress(b"\0" * (gzip_input.MAX_DECOMPRESSED + 1))
    with pytest.raises(UserDataError, match="beyond 16 MiB"):
        normalize(bomb)


def test_gzip_at_the_cap_is_accepted():
    assert gzip_input.gunzip(gzip.compress(b"a" * 1000), limit=1000) == b"a" * 1000
    with pytest.raises(UserDataError):
        gzip_input.gunzip(gzip.compress(b"a" * 1001), limit=1000)


def test_corrupt_gzip_is_refused():
    with pytest.raises(UserDataError, match=r"corrupt|truncated"):
        normalize(gzip.compress(b"[cernvm]\n")[:-12])


def mime(*parts_: tuple[str, str, bytes], boundary: str = "XYZ") -> bytes:
    out = [f'Content-Type: multipart/mixed; boundary="{boundary}"\nMIME-Version: 1.0\n\n'.encode()]
    for ctype, cte, body in parts_:
        out.append(
            f"--{boundary}\nContent-Type: {ctype}\nContent-Transfer-Encoding: {cte}\n\n".encode()
        )
        out.append(body + b"\n")
    out.append(f"--{boundary}--\n".encode())
    return b"".join(out)


def test_base64_cernvm_parts_are_decoded():
    block = b"[ucernvm-begin]\ncvmfs_branch=x\n[ucernvm-end]\n"
    data = mime(
        ("text/ucernvm", "base64", base64.encodebytes(block).strip()),
        ("text/amiconfig-user-data", "base64", base64.encodebytes(b"[cernvm]\nx=1\n").strip()),
        ("text/amiconfig", "base64", base64.encodebytes(b"[condor]\ny=2").strip()),
    )
    out = normalize(data)
    assert b"base64" not in out
    assert parts(out) == [
        ("text/ucernvm", block.decode(), parts(out)[0][2]),
        ("text/amiconfig-user-data", "[cernvm]\nx=1\n", parts(out)[1][2]),
        ("text/amiconfig", "[condor]\ny=2\n", parts(out)[2][2]),
    ]
    assert block in out  # µCernVM reads the raw text


def test_bad_base64_in_a_part_is_an_error():
    data = mime(("text/amiconfig", "base64", b"!!! not base64 !!!"))
    with pytest.raises(UserDataError, match=r"part 1 \(text/amiconfig\): bad base64"):
        normalize(data)


def test_other_headers_of_mime_parts_are_kept():
    data = (
        b'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
        b"Content-Type: text/cloud-config\nMerge-Type: list(append)+dict(recurse_array)\n"
        b'Content-Disposition: attachment; filename="cc.yaml"\n\n#cloud-config\na: 1\n--b--\n'
    )
    ((ctype, payload, headers),) = parts(normalize(data))
    assert ctype == "text/cloud-config"
    assert payload == "#cloud-config\na: 1\n"
    assert headers["Merge-Type"] == "list(append)+dict(recurse_array)"
    assert headers["Content-Disposition"] == 'attachment; filename="cc.yaml"'


def test_binary_parts_are_kept_as_they_came():
    blob = base64.encodebytes(gzip.compress(b"#cloud-config\n", mtime=0)).strip()
    data = mime(("application/x-gzip", "base64", blob), ("text/amiconfig", "7bit", b"[cernvm]\n"))
    out = normalize(data)
    assert blob in out
    msg = email.message_from_bytes(out)
    leaves = [p for p in msg.walk() if not p.is_multipart()]
    assert leaves[0].get_payload(decode=True) == gzip.compress(b"#cloud-config\n", mtime=0)


def test_old_syntax_in_a_plain_mime_part_is_split():
    data = mime(
        ("text/plain", "7bit", b"[ucernvm-begin]\ncvmfs_tag=a\n[ucernvm-end]\n[cernvm]\nx=1\n")
    )
    assert [t for t, _, _ in parts(normalize(data))] == ["text/ucernvm", "text/amiconfig"]


def test_nested_multipart_is_flattened_in_order():
    inner = mime(("text/amiconfig", "7bit", b"[cernvm]\n"), boundary="inner")
    inner_body = inner.split(b"\n\n", 1)[1]
    data = (
        b'Content-Type: multipart/mixed; boundary="outer"\nMIME-Version: 1.0\n\n'
        b"--outer\nContent-Type: text/ucernvm\n\n[ucernvm-begin]\n[ucernvm-end]\n"
        b'--outer\nContent-Type: multipart/mixed; boundary="inner"\n\n'
        + inner_body
        + b"--outer--\n"
    )
    assert [t for t, _, _ in parts(normalize(data))] == ["text/ucernvm", "text/amiconfig"]


def test_single_part_mime_becomes_multipart():
    data = b"MIME-Version: 1.0\nContent-Type: text/amiconfig\n\n[cernvm]\nx=1\n"
    assert [(t, p) for t, p, _ in parts(normalize(data))] == [("text/amiconfig", "[cernvm]\nx=1\n")]


def test_non_utf8_old_syntax_is_refused():
    with pytest.raises(UserDataError, match="UTF-8"):
        normalize(b"[cernvm]\nusers = j\xfcrgen\n")


@pytest.mark.parametrize(
    "name", ["legacy-mixed.txt", "legacy-ec2-cms.txt", "legacy-atlas-panda.txt"]
)
def test_normalising_own_output_changes_only_the_boundary(name):
    once = normalize((SAMPLES / name).read_bytes())
    twice = normalize(once)
    assert without_boundary(once) == without_boundary(twice)
    assert once != twice


def test_split_old_syntax_reports_start_lines():
    found = old_syntax.split_old_syntax((SAMPLES / "legacy-mixed.txt").read_text())
    assert [(p.content_type, p.line) for p in found] == [
        ("text/x-shellscript", 1),
        ("text/ucernvm", 4),
        ("text/amiconfig", 8),
        ("text/cloud-config", 14),
    ]


def test_parts_of_names_the_format():
    assert userdata.parts_of(b"#cloud-config\n")[0] == "cloud-init"
    assert userdata.parts_of(b"[cernvm]\n")[0] == "old-syntax"
    kind, found = userdata.parts_of(normalize(b"[cernvm]\n"))
    assert kind == "mime"
    assert [p.content_type for p in found] == ["text/amiconfig"]


def test_byte_order_mark_of_windows_editors_is_dropped():
    got = parts(normalize(b"\xef\xbb\xbf[cernvm]\r\nusers = a:b:\r\n"))
    assert [(t, p) for t, p, _ in got] == [("text/amiconfig", "[cernvm]\nusers = a:b:\n")]


# --- old syntax as its consumers read it (issue 19, item 3) --------------------

NO_EXIT = (
    "#! /bin/bash\n"
    "[ -f /etc/cernvm/site.conf ] && . /etc/cernvm/site.conf\n"
    "echo ready > /tmp/ready\n"
    "[amiconfig]\n"
    "plugins=cernvm\n"
    "[cernvm]\n"
    "repositories = grid\n"
    "[ucernvm-begin]\n"
    "cvmfs_http_proxy=DIRECT\n"
    "[ucernvm-end]\n"
)


def test_script_without_exit_keeps_its_whole_text_and_its_sections_reach_their_parts():
    got = parts(normalize(NO_EXIT.encode()))
    assert [(t, p) for t, p, _ in got] == [
        ("text/x-shellscript", NO_EXIT),  # the shell runs it all, as before
        # amiconfig read every section from the first header on ('[ -f ... ]'
        # with blanks is shell), µCernVM found its block anywhere
        ("text/amiconfig", "[amiconfig]\nplugins=cernvm\n[cernvm]\nrepositories = grid\n"),
        ("text/ucernvm", "[ucernvm-begin]\ncvmfs_http_proxy=DIRECT\n[ucernvm-end]\n"),
    ]


def test_script_without_exit_its_block_alone_reaches_ucernvm():
    text = "#!/bin/sh\necho hi\n[ucernvm-begin]\ncvmfs_tag=t\n[ucernvm-end]\n"
    got = parts(normalize(text.encode()))
    assert [(t, p) for t, p, _ in got] == [
        ("text/x-shellscript", text),
        ("text/ucernvm", "[ucernvm-begin]\ncvmfs_tag=t\n[ucernvm-end]\n"),
    ]


def test_script_without_exit_its_yaml_stays_with_amiconfig_not_cloud_init():
    # cloud-init saw one script before: the YAML was never cloud-config
    text = "#!/bin/sh\necho hi\n[cernvm]\nshell = /bin/sh\n#cloud-config\nruncmd: [reboot]\n"
    got = parts(normalize(text.encode()))
    assert [t for t, _, _ in got] == ["text/x-shellscript", "text/amiconfig"]
    assert got[1][1] == "[cernvm]\nshell = /bin/sh\n#cloud-config\nruncmd: [reboot]\n"


def test_converting_a_script_without_exit_twice_gives_the_same_parts():
    once = normalize(NO_EXIT.encode())
    assert parts(normalize(once)) == parts(once)


def test_two_shebang_lines_the_second_stays_in_the_script():
    text = "#!/bin/sh\n. /etc/cernvm/site.conf\n#!/bin/bash\necho two\nexit\n[cernvm]\nx = 1\n"
    got = parts(normalize(text.encode()))
    assert got[0][:2] == ("text/x-shellscript", "#!/bin/sh\n. /etc/cernvm/site.conf\n#!/bin/bash\n"
                          "echo two\nexit\n")
    assert got[1][:2] == ("text/amiconfig", "[cernvm]\nx = 1\n")


def test_leading_blank_line_before_the_script_is_dropped():
    # CMS on EC2: qq{ followed by a newline; amiconfig.sh and µCernVM skipped it,
    # cloud-init needs '#!' on the first line
    got = parts(normalize(b"\n#!/bin/bash\necho hi\nexit\n\n[cernvm]\nusers = cms:cms:x\n"))
    assert got[0][:2] == ("text/x-shellscript", "#!/bin/bash\necho hi\nexit\n")


def test_shebang_with_a_space_is_a_script_and_keeps_its_line():
    got = parts(normalize(b"#! /bin/bash\necho hi\nexit 0\n[cernvm]\nx = 1\n"))
    assert got[0][:2] == ("text/x-shellscript", "#! /bin/bash\necho hi\nexit 0\n")
    before = parts(normalize(b"#! /bin/sh.before\necho hi\nexit 0\n[cernvm]\nx = 1\n"))
    assert before[0][0] == "text/x-shellscript-before-amiconfig"
    assert before[0][1] == "#! /bin/sh\necho hi\nexit 0\n"


def test_exit_0_ends_the_script_and_exit_inside_a_line_does_not():
    text = "#!/bin/sh\necho exit\nexit_code=1\nexit 0\n[cernvm]\nx = 1\n"
    got = parts(normalize(text.encode()))
    assert got[0][1] == "#!/bin/sh\necho exit\nexit_code=1\nexit 0\n"


@pytest.mark.parametrize(
    "placeholder", ["##user_data_option_cvmfs_proxy##", "{{VAF_MASTER_IP}}", "{{ VAR }}"]
)
def test_generator_placeholders_are_text_not_templates(placeholder):
    # Vac and the ALICE VAF fill these in before the VM starts; only a first
    # line '## template: jinja' makes a template, for cloud-init and here
    text = (
        f"#!/bin/sh\necho {placeholder}\nexit 0\n[condor]\ncondor_master = {placeholder}\n"
        f"[ucernvm-begin]\ncvmfs_http_proxy='{placeholder}'\n[ucernvm-end]\n"
    )
    got = parts(normalize(text.encode()))
    assert [t for t, _, _ in got] == ["text/x-shellscript", "text/amiconfig", "text/ucernvm"]
    assert all(placeholder in p and not p.startswith("## template") for _, p, _ in got)
    assert "".join(p for _, p, _ in got) == text
