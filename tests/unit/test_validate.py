"""What validate finds, and where it says it is."""

from __future__ import annotations

import base64
from pathlib import Path

from cloudinit_cernvm import validate

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def found(data: str | bytes) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return [str(p) for p in validate.check(raw)]


def test_real_old_syntax_samples_are_clean():
    for name in ("legacy-mixed.txt", "legacy-ec2-cms.txt", "legacy-atlas-panda.txt"):
        assert found((SAMPLES / name).read_bytes()) == [], name


def test_slide_mime_is_malformed_and_its_parts_are_still_checked():
    problems = found((SAMPLES / "mime-as-printed.txt").read_bytes())
    assert problems[0].startswith("MIME: malformed MIME: the header declares boundary")
    # the parts behind the boundary really used are checked too
    assert "part 1 (text/ucernvm), line 2: unknown µCernVM key 'key1'" in problems


def test_unknown_ucernvm_key_with_the_intended_one_and_its_line():
    text = "#!/bin/sh\nexit\n[ucernvm-begin]\ncvmfs_proxy=http://p:3128\n[ucernvm-end]\n"
    assert found(text) == [
        "line 4: unknown µCernVM key 'cvmfs_proxy' (did you mean 'cvmfs_http_proxy'?)"
    ]


def test_unknown_amiconfig_plugin_and_section():
    text = "[amiconfig]\nplugins = cernvm noipp\n[cernvm]\nx = 1\n[condorr]\ny = 2\n"
    assert found(text) == [
        "line 2: amiconfig plugin 'noipp' does not exist (did you mean 'noip'?)",
        "line 5: section [condorr] is no amiconfig plugin (did you mean 'condor'?)",
    ]


def test_options_outside_any_section():
    text = "#!/bin/sh\nexit\nusers = a:b:\n[cernvm]\nx = 1\n"
    assert found(text) == ["line 3: option 'users' is outside any section: amiconfig ignores it"]


def test_script_without_exit_before_ini_text():
    text = "#!/bin/sh\necho hi\n[cernvm]\nusers = a:b:\n"
    (problem,) = found(text)
    assert problem.startswith("line 3: '[cernvm]' is inside the script, which has no line 'exit'")


def test_invalid_yaml_in_cloud_config_with_its_line():
    text = "[cernvm]\nx = 1\n#cloud-config\nruncmd:\n  - [ls\n"
    (problem,) = found(text)
    assert problem.startswith("line 6: cloud-config is not valid YAML") or problem.startswith(
        "line 5: cloud-config is not valid YAML"
    )


def test_cloud_config_that_is_no_mapping():
    assert found("#cloud-config\n- a\n- b\n") == [
        "line 1: cloud-config must be a mapping of module settings"
    ]


def test_switch_values_and_blanks_around_keys():
    text = "[ucernvm-begin]\nresize_rootfs=maybe\ncvmfs_tag = x\nno equals here\n[ucernvm-end]\n"
    assert found(text) == [
        "line 2: µCernVM key 'resize_rootfs' takes on or off, not 'maybe'",
        "line 3: blanks around the key 'cvmfs_tag': µCernVM keeps them and the key then names "
        "nothing; write key=value",
        "line 4: µCernVM ignores this line: no '='",
    ]


def test_marker_problems_mucernvm_would_hit():
    assert "line 1: '[ucernvm-end]' before any '[ucernvm-begin]': µCernVM stops reading here" in (
        found("[ucernvm-end]\n[ucernvm-begin]\ncvmfs_tag=a\n[ucernvm-end]\n")
    )
    assert any(
        "CR LF line ends" in p for p in found("[ucernvm-begin]\r\ncvmfs_tag=a\r\n[ucernvm-end]\r\n")
    )
    assert any("not an exact µCernVM marker" in p for p in found("[ucernvm-begin] \ncvmfs_tag=a\n"))
    assert "line 4: a second µCernVM block: µCernVM reads only the first" in found(
        "[ucernvm-begin]\n[ucernvm-end]\n[cernvm]\n[ucernvm-begin]\n[ucernvm-end]\n"
    )


def test_base64_ucernvm_part_is_invisible_to_mucernvm():
    body = base64.encodebytes(b"[ucernvm-begin]\ncvmfs_tag=a\n[ucernvm-end]\n").decode()
    data = (
        'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
        f"Content-Type: text/ucernvm\nContent-Transfer-Encoding: base64\n\n{body}--b--\n"
    )
    (problem,) = found(data)
    assert problem.startswith("part 1 (text/ucernvm): base64-encoded: µCernVM reads the raw")


def test_missing_closing_boundary_is_reported():
    data = 'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
    data += "Content-Type: text/amiconfig\n\n[cernvm]\nx = 1\n"
    assert found(data) == ["MIME: no closing line '--b--': the last part runs to the end"]


def test_bomb_and_plain_formats():
    import gzip

    assert found(gzip.compress(b"\0" * (17 * 1024 * 1024)))[0].startswith(
        "user-data: gzip user-data expands beyond 16 MiB"
    )
    assert found("#cloud-config\npackages: [htop]\n") == []
    assert found("#!/bin/bash\necho hi\n") == []
