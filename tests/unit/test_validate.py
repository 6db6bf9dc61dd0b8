"""What validate finds, where it says it is, and how bad it is."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloudinit_cernvm import validate
from cloudinit_cernvm.validate import problem

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def found(data: str | bytes) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return [str(p) for p in validate.check(raw)]


def codes(data: str | bytes) -> list[tuple[str, str]]:
    raw = data.encode() if isinstance(data, str) else data
    return [(p.code, p.severity) for p in validate.check(raw)]


def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cloudinit_cernvm", *args], input=stdin,
                          capture_output=True, timeout=60, check=False)


def test_real_old_syntax_samples_are_clean():
    for name in ("legacy-mixed.txt", "legacy-ec2-cms.txt", "legacy-atlas-panda.txt"):
        assert found((SAMPLES / name).read_bytes()) == [], name


def test_slide_mime_is_malformed_and_its_parts_are_still_checked():
    problems = found((SAMPLES / "mime-as-printed.txt").read_bytes())
    assert problems[0].startswith("MIME: malformed MIME: the header declares boundary")
    assert problems[0].endswith("[mime-malformed]")
    # the parts behind the boundary really used are checked too
    assert problems[1].startswith(
        "warning: part 1 (text/ucernvm), line 2: unknown µCernVM key 'key1'"
    )


def test_unknown_ucernvm_key_is_a_warning_with_the_intended_one_and_its_line():
    text = "#!/bin/sh\nexit\n[ucernvm-begin]\ncvmfs_proxy=http://p:3128\n[ucernvm-end]\n"
    assert found(text) == [
        "warning: line 4: unknown µCernVM key 'cvmfs_proxy': it only becomes the variable "
        "_UCONTEXT_CVMFS_PROXY (did you mean 'cvmfs_http_proxy'?) [ucernvm-unknown-key]"
    ]


def test_unknown_amiconfig_plugin_and_section_are_warnings():
    text = "[amiconfig]\nplugins = cernvm noipp\n[cernvm]\nusers = a:b:\n[condorr]\ny = 2\n"
    assert found(text) == [
        "warning: line 2: amiconfig plugin 'noipp' does not exist: amiconfig ignores it "
        "(did you mean 'noip'?) [amiconfig-unknown-plugin]",
        "warning: line 5: section [condorr] is read by no amiconfig plugin "
        "(did you mean 'condor'?) [amiconfig-unknown-section]",
    ]


def test_real_contexts_plugins_and_sections_are_known():
    # CernVM Online writes these into every context with a password
    text = (
        "[amiconfig]\nplugins=cernvm cernvm_appliance rapadminpassword condor\n"
        "[rpath]\nrap-password=x\n[cernvm_appliance]\npassword=x\n"
        "[cernvm]\nedition=Desktop\nscreenRes=1024x768\nkeyboard=us\nstartXDM=on\n"
        "auto_login=on\nswap_size=auto\ndesktop_icons=a,b\ncontextualization_key=k:p\n"
        "eos-server=eos.example.org\n[general]\n[condor]\nlowport=1\n"
    )
    assert found(text) == []


def test_cernvm_option_no_plugin_reads_is_a_warning_with_a_suggestion():
    text = "[cernvm]\norganisations=ATLAS\nrepositores=atlas\n"
    assert found(text) == [
        "warning: line 3: [cernvm] option 'repositores' is read by no plugin "
        "(did you mean 'repositories'?) [amiconfig-unknown-option]"
    ]


def test_comma_separated_plugins_are_one_unknown_name():
    (problem,) = validate.check(b"[amiconfig]\nplugins = cernvm,condor\n")
    assert problem.code == "amiconfig-unknown-plugin" and "'cernvm,condor'" in problem.message


def test_options_outside_any_section():
    text = "#!/bin/sh\nexit\nusers = a:b:\n[cernvm]\nshell = /bin/sh\n"
    assert found(text) == [
        "warning: line 3: option 'users' is outside any section: amiconfig ignores it "
        "[amiconfig-option-outside]"
    ]


def test_amiconfig_parts_are_checked_joined():
    # the second part's leading option lands in the first part's last section
    data = (
        'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'
        "--b\nContent-Type: text/amiconfig\n\n[amiconfig]\nplugins = cernvm\n[cernvm]\n"
        "shell = /bin/sh\n"
        "--b\nContent-Type: text/amiconfig\n\nshell = /bin/bash\n[condor]\nlowport = 1\n--b--\n"
    )
    assert found(data) == [
        "warning: part 1 (text/amiconfig), line 4: [cernvm] option 'shell' is given again later "
        "(joined line 5 of the amiconfig parts): amiconfig takes the later one "
        "[amiconfig-option-repeated]",
        "warning: part 2 (text/amiconfig), line 1: option 'shell' stands before any section of "
        "its part: amiconfig reads the parts joined and takes it into [cernvm] "
        "[amiconfig-option-joined]",
    ]


def test_a_section_in_another_case_makes_amiconfig_or_its_plugin_fail():
    assert codes("[AMICONFIG]\nplugins = cernvm\n") == [("amiconfig-section-case", "error")]
    (problem,) = found("[amiconfig]\nplugins = cernvm\n[CernVM]\nshell = /bin/sh\n")
    assert "the plugin 'cernvm' fails; write [cernvm]" in problem
    # both spellings: amiconfig finds [amiconfig]; [Amiconfig] is only unread
    assert codes("[amiconfig]\n[Amiconfig]\n") == [("amiconfig-unknown-section", "warning")]


def test_lines_amiconfig_drops_are_warnings():
    text = "[cernvm]\nusers = a:b:\n  continued\nno equals sign\n"
    assert codes(text) == [
        ("amiconfig-line-dropped", "warning"),
        ("amiconfig-line-dropped", "warning"),
    ]


def test_script_without_exit_before_sections_warns_that_the_shell_runs_them():
    text = "#!/bin/sh\necho hi\n[cernvm]\nusers = a:b:\n"
    (problem,) = found(text)
    assert problem.startswith(
        "warning: line 3: the script has no line 'exit' before '[cernvm]': amiconfig and "
        "µCernVM read this section and the lines after it, and the shell also runs them"
    )


def test_section_hidden_in_a_mime_script_part():
    data = (
        'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'
        "--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n[cernvm]\nx = 1\n--b--\n"
    )
    assert codes(data) == [("script-hides-section", "warning")]


def test_invalid_yaml_in_cloud_config_with_its_line():
    text = "[cernvm]\nshell = x\n#cloud-config\nruncmd:\n  - [ls\n"
    (problem,) = found(text)
    assert problem.startswith(("line 6: cloud-config is not valid YAML",
                               "line 5: cloud-config is not valid YAML"))
    assert problem.endswith("[yaml-invalid]")


def test_cloud_config_that_is_no_mapping():
    assert found("#cloud-config\n- a\n- b\n") == [
        "line 1: cloud-config must be a mapping of module settings [cloud-config-not-mapping]"
    ]


def test_switch_values_and_blanks_around_keys():
    text = "[ucernvm-begin]\nresize_rootfs=maybe\ncvmfs_tag = x\nno equals here\n[ucernvm-end]\n"
    assert found(text) == [
        "line 2: µCernVM key 'resize_rootfs' takes on or off, not 'maybe' [ucernvm-switch-value]",
        "line 3: blanks around the key 'cvmfs_tag': µCernVM keeps them and the key then names "
        "nothing; write key=value [ucernvm-key-blanks]",
        "warning: line 4: µCernVM ignores this line: no '=' [ucernvm-no-equals]",
    ]
    assert found("[ucernvm-begin]\nresize_rootfs='true'\n[ucernvm-end]\n") == []


def test_marker_problems_mucernvm_would_hit():
    assert codes("[ucernvm-end]\n[ucernvm-begin]\ncvmfs_tag=a\n[ucernvm-end]\n") == [
        ("ucernvm-end-first", "error")
    ]
    assert ("ucernvm-marker-inexact", "error") in codes("[ucernvm-begin] \ncvmfs_tag=a\n")
    second = "[ucernvm-begin]\n[ucernvm-end]\n[cernvm]\n[ucernvm-begin]\n[ucernvm-end]\n"
    assert (
        "line 4: a second µCernVM block: µCernVM reads only the first [ucernvm-second-block]"
        in found(second)
    )


def test_what_only_older_images_miss_is_a_warning():
    crlf = "[ucernvm-begin]\r\ncvmfs_tag=a\r\n[ucernvm-end]\r\n"
    assert codes(crlf) == [("ucernvm-crlf", "warning")]
    body = base64.encodebytes(b"[ucernvm-begin]\ncvmfs_tag=a\n[ucernvm-end]\n").decode()
    data = (
        'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
        f"Content-Type: text/ucernvm\nContent-Transfer-Encoding: base64\n\n{body}--b--\n"
    )
    (problem,) = found(data)
    assert problem.startswith("warning: part 1 (text/ucernvm): base64-encoded: this project's")


def test_missing_closing_boundary_is_reported():
    data = 'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
    data += "Content-Type: text/amiconfig\n\n[cernvm]\nshell = x\n"
    assert found(data) == [
        "warning: MIME: no closing line '--b--': the last part runs to the end [mime-unclosed]"
    ]


def test_bomb_and_plain_formats():
    import gzip

    assert found(gzip.compress(b"\0" * (17 * 1024 * 1024)))[0].startswith(
        "user-data: gzip user-data expands beyond 16 MiB"
    )
    assert found("#cloud-config\npackages: [htop]\n") == []
    assert found("#!/bin/bash\necho hi\n") == []


def test_every_code_has_a_severity_and_a_readme_row():
    readme = (Path(__file__).resolve().parents[2] / "README.rst").read_text()
    for code, (severity, meaning) in problem.CODES.items():
        assert severity in (problem.ERROR, problem.WARNING) and meaning
        assert f"``{code}``" in readme, code


# --- the command: exit status, --strict, --json --------------------------------

WARNED = b"[ucernvm-begin]\ncvmfs_proxy=DIRECT\n[ucernvm-end]\n"
BROKEN = b"[ucernvm-begin]\nresize_rootfs=maybe\ncvmfs_proxy=DIRECT\n[ucernvm-end]\n"


@pytest.mark.parametrize(
    ("data", "strict", "status"),
    [(WARNED, False, 0), (WARNED, True, 1), (BROKEN, False, 1), (b"[cernvm]\nshell=x\n", True, 0)],
)
def test_exit_status_by_severity_and_strict(data, strict, status):
    done = cli("validate", *(["--strict"] if strict else []), stdin=data)
    assert done.returncode == status, done.stdout


def test_json_lists_each_finding_with_line_part_severity_code_message():
    done = cli("validate", "--json", stdin=BROKEN)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["errors"] == 1 and report["warnings"] == 1
    assert report["findings"] == [
        {
            "line": 2,
            "part": None,
            "severity": "error",
            "code": "ucernvm-switch-value",
            "message": "µCernVM key 'resize_rootfs' takes on or off, not 'maybe'",
        },
        {
            "line": 3,
            "part": None,
            "severity": "warning",
            "code": "ucernvm-unknown-key",
            "message": "unknown µCernVM key 'cvmfs_proxy': it only becomes the variable "
            "_UCONTEXT_CVMFS_PROXY (did you mean 'cvmfs_http_proxy'?)",
        },
    ]
    clean = json.loads(cli("validate", "--json", stdin=WARNED).stdout)
    assert clean["ok"] is True and clean["format"] == "old-syntax"


def test_json_findings_in_mime_name_the_part():
    data = (
        b'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'
        b"--b\nContent-Type: text/cloud-config\n\n#cloud-config\na: 1\n"
        b"--b\nContent-Type: text/ucernvm\n\n[ucernvm-begin]\ncvmfs_prxy=x\n[ucernvm-end]\n--b--\n"
    )
    (finding,) = json.loads(cli("validate", "--json", stdin=data).stdout)["findings"]
    assert (finding["part"], finding["line"], finding["code"]) == (2, 2, "ucernvm-unknown-key")


def test_empty_and_unterminated_amiconfig_parts_are_joined_without_losing_lines():
    # found by the fuzz test: an empty part took a line of the joined text
    data = (
        'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'
        "--b\nContent-Type: text/amiconfig\n\n"
        "--b\nContent-Type: text/amiconfig\n\nusers = a:b:\n--b--\n"
    )
    (problem,) = validate.check(data.encode())
    assert (problem.code, problem.part, problem.line) == ("amiconfig-option-outside", 2, 1)
    # an empty last part took the place of a line that is not there
    assert validate.check(data.replace("users = a:b:\n--b--", "users = a:b:\n--b\n\n--b--")
                          .encode())
