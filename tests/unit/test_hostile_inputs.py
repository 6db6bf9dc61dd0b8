"""Hostile and oversized inputs (issue 22): nothing blocks, one bad file is one problem."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cloudinit_cernvm import seed, userdata
from cloudinit_cernvm.userdata_part import UserDataError
from tests.unit.test_seed import write

REPO = Path(__file__).resolve().parents[2]
CLOUD_CONFIG = "#cloud-config\nruncmd: [[true]]\n"


write_seed = write  # one seed writer for the unit tests (test_seed.py)


def full_seed(d: Path) -> Path:
    return write_seed(d, source="EC2\n", user_data=CLOUD_CONFIG,
                      meta_data=json.dumps({"instance-id": "i-1"}),
                      ucontext="_UCONTEXT_CVMFS_BRANCH=prod\n")


def replace_with(path: Path, kind: str, tmp_path: Path) -> None:
    """Put a FIFO, socket, directory or symbolic link where a seed file was."""
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        outside = tmp_path / "outside"
        outside.write_text("_UCONTEXT_X=from-outside\n" if path.name != "meta-data"
                           else '{"instance-id": "i-outside"}')
        path.symlink_to(outside)
    elif kind == "device":
        path.symlink_to("/dev/zero")  # a symbolic link to a device: refused as a link
    else:
        raise AssertionError(kind)


def read_in_child(seed_dir: Path) -> dict:
    """read_seed in another process, bounded: a hang fails the test instead of hanging it."""
    code = (
        "import json, sys\n"
        "from cloudinit_cernvm import seed\n"
        "try:\n"
        "    s = seed.read_seed(sys.argv[1])\n"
        "    print(json.dumps({'user_data': s.user_data.decode(), 'meta': s.meta_data,"
        " 'ucontext': s.ucontext, 'problems': s.problems}))\n"
        "except seed.SeedError as err:\n"
        "    print(json.dumps({'error': str(err)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(seed_dir)], capture_output=True,
                          text=True, timeout=10, cwd=REPO, check=True)
    return json.loads(done.stdout)


KINDS = ["fifo", "socket", "directory", "symlink"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["meta-data", "ucontext"])
def test_an_odd_optional_file_is_one_problem_and_the_rest_is_used(tmp_path, name, kind):
    d = full_seed(tmp_path / "s")
    replace_with(d / name, kind, tmp_path)
    got = read_in_child(d)
    assert got["user_data"] == CLOUD_CONFIG
    problems = [p for p in got["problems"] if "should be" not in p]
    assert len(problems) == 1, problems
    assert f"cannot read {d / name}" in problems[0] and "not a regular file" in problems[0]
    assert "\n" not in problems[0]
    assert "from-outside" not in json.dumps(got) and "i-outside" not in json.dumps(got)
    if name == "meta-data":
        assert got["meta"] == {} and got["ucontext"] == {"_UCONTEXT_CVMFS_BRANCH": "prod"}
    else:
        assert got["meta"] == {"instance-id": "i-1"} and got["ucontext"] == {}


@pytest.mark.parametrize("kind", [*KINDS, "device"])
@pytest.mark.parametrize("name", ["user-data", "source"])
def test_an_odd_required_file_refuses_the_seed_in_one_line(tmp_path, name, kind):
    d = full_seed(tmp_path / "s")
    replace_with(d / name, kind, tmp_path)
    got = read_in_child(d)
    assert "error" in got, got
    assert got["error"].startswith(f"cannot read {d / name}: ")
    assert "not a regular file" in got["error"] and "\n" not in got["error"]


def test_read_ucontext_never_blocks_on_a_fifo(tmp_path):
    d = full_seed(tmp_path / "s")
    replace_with(d / "ucontext", "fifo", tmp_path)
    code = ("import sys\nfrom cloudinit_cernvm import seed\n"
            "try:\n    seed.read_ucontext(sys.argv[1])\n"
            "except seed.SeedError as err:\n    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True,
                          text=True, timeout=10, cwd=REPO, check=True)
    assert "a FIFO, not a regular file" in done.stdout


def test_show_never_blocks_on_fifos(tmp_path):
    d = full_seed(tmp_path / "s")
    for name in ("meta-data", "ucontext"):
        replace_with(d / name, "fifo", tmp_path)
    records = tmp_path / "cloud" / "instances" / "i-1" / "cernvm"
    records.mkdir(parents=True)
    (tmp_path / "cloud" / "data").mkdir()
    os.mkfifo(tmp_path / "cloud" / "data" / "instance-id")
    os.mkfifo(records / "amiconfig.json")
    (tmp_path / "cloud" / "instance").symlink_to(records.parent)
    done = subprocess.run(
        [sys.executable, "-m", "cloudinit_cernvm", "show", "--json", "--seed-dir", str(d),
         "--cloud-dir", str(tmp_path / "cloud")],
        capture_output=True, text=True, timeout=20, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["provider"] == "EC2"
    assert len([p for p in report["seed_problems"] if "a FIFO" in p]) == 2
    assert "a FIFO" in report["records"]["files"]["amiconfig.json"]["error"]


# --- deep nesting (item 5) ---------------------------------------------------

def deep_json(depth: int) -> str:
    return '{"instance-id": "i-deep", "x": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [40, 2000, 200_000])
def test_deeply_nested_meta_data_is_one_problem_and_the_user_data_is_kept(tmp_path, depth):
    d = full_seed(tmp_path / "s")
    (d / "meta-data").write_text(deep_json(depth))
    s = seed.read_seed(str(d))
    assert s.user_data == CLOUD_CONFIG.encode()
    assert s.meta_data == {}
    assert s.problems == [f"{d / 'meta-data'}: nested more than {seed.MAX_META_DEPTH} levels"
                          " deep; ignored"]
    assert s.digest()  # the instance id can still be made


def test_meta_data_of_ordinary_depth_is_kept(tmp_path):
    d = full_seed(tmp_path / "s")
    (d / "meta-data").write_text(deep_json(10))
    assert seed.read_seed(str(d)).meta_data["instance-id"] == "i-deep"


# --- secrets in messages (item 6) --------------------------------------------

def test_a_wrong_boundary_message_does_not_quote_a_password_line():
    mime = (b'Content-Type: multipart/mixed; boundary="XYZ"\nMIME-Version: 1.0\n\n'
            b"--password=hunter2\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n"
            b"--password=hunter2--\n")
    with pytest.raises(UserDataError) as err:
        userdata.normalize(mime)
    message = str(err.value)
    assert "hunter2" not in message
    assert "separated by '--password=(hidden)'" in message


def deep_mime(depth: int) -> bytes:
    """A script part inside ``depth`` nested multiparts."""
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'
                   for i in range(depth))
    tail = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    return ("MIME-Version: 1.0\n" + head + "Content-Type: text/x-shellscript\n\n"
            "#!/bin/sh\necho deep\n" + tail).encode()


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cloudinit_cernvm", *args], input=stdin,
                          capture_output=True, timeout=60, cwd=REPO, check=False)


def test_mime_within_the_depth_limit_is_flattened():
    out = userdata.normalize(deep_mime(20))
    assert out.count(b"Content-Type: text/x-shellscript") == 1
    assert b"echo deep" in out


TOO_DEEP = r"MIME multiparts nested (\d+ levels deep|too deep to be parsed) \(at most 20\)"


@pytest.mark.parametrize("depth", [21, 980])
def test_deep_mime_is_one_clear_error(depth):
    data = deep_mime(depth)
    assert len(data) < 64 * 1024
    with pytest.raises(UserDataError, match=TOO_DEEP):
        userdata.normalize(data)
    with pytest.raises(UserDataError, match=TOO_DEEP):
        userdata.parts_of(data)


@pytest.mark.parametrize("verb", ["convert", "validate", "explain"])
def test_cli_on_deep_mime_says_one_line_and_exits_1(verb):
    done = run_cli(verb, stdin=deep_mime(980))
    assert done.returncode == 1, done.stderr
    said = (done.stdout if verb == "validate" else done.stderr).decode()
    assert "Traceback" not in said and "internal error" not in done.stderr.decode()
    assert said.count("\n") == 1 and re.search(TOO_DEEP, said)


# --- templates (item 8) ------------------------------------------------------

HOSTILE_TEMPLATES = [
    ('{{ "x" * 10**9 }}', "'*' would make 1000000000 items"),
    ("{{ 10**(10**10) }}", "'**' would make a number"),
    ("{% set ns = namespace(n=10**1000) %}{% for i in range(30) %}"
     "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}", "'*' would make a number of"),
    ("{{ [0] * 10**8 }}", "'*' would make 100000000 items"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "rendering took more than"),
    ("{% for i in range(100000) %}{% for j in range(100) %}xxxxx{% endfor %}{% endfor %}",
     "renders to more than 1048576 characters"),
    ('{{ "x".ljust(2**31) }}', "needs more than 512 MiB"),
    ("{{ ''.__class__.__mro__ }}", "unsafe"),
    ("{{ cycler.__init__.__globals__ }}", "unsafe"),
]


@pytest.mark.parametrize(("body", "reason"), HOSTILE_TEMPLATES)
def test_hostile_templates_are_refused_quickly_and_in_one_line(body, reason):
    import time

    from cloudinit_cernvm import templates

    started = time.monotonic()
    with pytest.raises(templates.TemplateError) as err:
        templates.render_template("## template: jinja\n" + body + "\n", {}, timeout=2.0)
    took = time.monotonic() - started
    assert reason in str(err.value), str(err.value)
    assert "\n" not in str(err.value)
    assert took < 3.0, took


def test_a_hostile_template_part_is_one_warning_and_goes_to_amiconfig_as_written():
    from cloudinit_cernvm import amiconfig

    bomb = '## template: jinja\n[a]\nx = {{ "x" * 10**9 }}\n'
    good = "## template: jinja\n[b]\nh = {{ hostname }}\n"
    texts, warnings = amiconfig.prepare_parts([("p1", bomb), ("p2", good)], {"hostname": "w1"})
    assert texts == [bomb, "[b]\nh = w1\n"]
    assert len(warnings) == 1 and warnings[0].startswith("amiconfig part p1: template not")


def test_jinja_powers_associate_to_the_left_so_10_to_10_to_10_is_small():
    from cloudinit_cernvm import templates

    out = templates.render_template("## template: jinja\n{{ 10**10**10 }}\n", {})
    assert out == "1" + "0" * 100 + "\n"  # (10**10)**10, as Jinja reads it


def test_an_ordinary_template_still_renders_in_the_sandbox():
    from cloudinit_cernvm import templates

    text = ("## template: jinja\n[condor]\nhost = {{ v1.local_hostname | upper }}\n"
            "{% for i in range(3) %}slot{{ i }} = {{ 2 ** 10 * i }}\n{% endfor %}"
            "{{ 'a-b'.split('-') | join(',') }}\n")
    out = templates.render_template(text, {"v1": {"local_hostname": "w1"}})
    assert out == "[condor]\nhost = W1\nslot0 = 0\nslot1 = 1024\nslot2 = 2048\na,b\n"


# --- records never written through a pre-placed link (item 7) ----------------

FAKE_AMICONFIG = REPO / "tests" / "fakes" / "amiconfig"
RECORD_FILES = ["amiconfig.log", "amiconfig.json", "amiconfig-user-data",
                "scripts-before/00-s.log", "amiconfig-metadata/2007-12-15/user-data"]


def outside_files(tmp_path: Path, names: list[str]) -> dict[Path, Path]:
    """One file outside the records per name, holding a known text."""
    outside = tmp_path / "outside"
    outside.mkdir()
    targets = {}
    for index, name in enumerate(names):
        target = outside / f"target-{index}"
        target.write_text("precious\n")
        target.chmod(0o644)
        targets[Path(name)] = target
    return targets


def contextualize_into(tmp_path: Path, cernvm: Path) -> dict:
    from cloudinit_cernvm import amiconfig, amiconfig_metadata, amiconfig_settings

    record_dir = tmp_path / "fake-record"
    record_dir.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "FAKE_AMICONFIG_RECORD": str(record_dir)}
    config = tmp_path / "default.cfg"  # the stand-in reads it as amiconfig does
    config.write_text("[general]\nenabled_plugins = rootsshkeys\ndisabled_plugins =\n")
    settings = amiconfig_settings.Settings(
        [sys.executable, str(FAKE_AMICONFIG), "-c", str(config)], 30,
        str(tmp_path / "state" / "user.done"))
    meta = amiconfig_metadata.InstanceMeta("i-77", "vm77", ["ssh-ed25519 KEY u@h"])
    scripts = [amiconfig.Script("s", "#!/bin/sh\necho before\n")]
    return amiconfig.contextualize(str(cernvm), ["[amiconfig]\nplugins = condor\n"], scripts,
                                   settings, meta, env)


def test_record_files_replace_pre_placed_links_and_leave_their_targets_alone(tmp_path):
    cernvm = tmp_path / "instance" / "cernvm"
    targets = outside_files(tmp_path, RECORD_FILES)
    for name, target in targets.items():
        link = cernvm / name
        link.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        link.symlink_to(target)
    record = contextualize_into(tmp_path, cernvm)
    assert record["exit_status"] == 0, record
    for name, target in targets.items():
        assert target.read_text() == "precious\n", name
        assert oct(target.stat().st_mode & 0o777) == oct(0o644), name
        path = cernvm / name
        assert not path.is_symlink() and path.is_file(), name
        assert path.stat().st_mode & 0o077 == 0, name
    assert "Plugin disabled" in (cernvm / "amiconfig.log").read_text()


@pytest.mark.parametrize("which", ["cernvm", "scripts-before", "amiconfig-metadata"])
def test_a_record_directory_that_is_a_link_is_replaced_not_followed(tmp_path, which):
    cernvm = tmp_path / "instance" / "cernvm"
    outside = tmp_path / "outside-dir"
    outside.mkdir(mode=0o755)
    (outside / "keep").write_text("precious\n")
    if which == "cernvm":
        cernvm.parent.mkdir(parents=True)
        cernvm.symlink_to(outside)
    else:
        cernvm.mkdir(parents=True, mode=0o700)
        (cernvm / which).symlink_to(outside)
    record = contextualize_into(tmp_path, cernvm)
    assert record["exit_status"] == 0, record
    assert sorted(p.name for p in outside.iterdir()) == ["keep"]
    assert (outside / "keep").read_text() == "precious\n"
    assert outside.stat().st_mode & 0o777 == 0o755
    assert (cernvm / which if which != "cernvm" else cernvm).is_dir()
    assert not (cernvm / which if which != "cernvm" else cernvm).is_symlink()


def test_a_fifo_as_the_record_does_not_block_already_done(tmp_path):
    code = ("import os, sys\nfrom cloudinit_cernvm import amiconfig\n"
            "print(amiconfig.already_done(sys.argv[1]))\n")
    os.mkfifo(tmp_path / "amiconfig.json")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=10, cwd=REPO, check=True)
    assert done.stdout == "False\n"


# --- an input cap for convert and validate (item 11) -------------------------

def test_the_cli_cap_is_the_seeds():
    from cloudinit_cernvm import input_file

    assert input_file.MAX_INPUT == seed.MAX_USER_DATA


@pytest.mark.parametrize("verb", ["convert", "validate", "explain"])
@pytest.mark.parametrize("source", ["dev-zero", "fifo", "stdin", "file"])
def test_endless_or_oversized_input_is_one_line_and_exit_1(tmp_path, verb, source):
    big = seed.MAX_USER_DATA + 1
    if source == "dev-zero":
        done = run_cli(verb, "/dev/zero")
    elif source == "file":
        (tmp_path / "big").write_bytes(b"#cloud-config\n" + b"#" * big)
        done = run_cli(verb, str(tmp_path / "big"))
    elif source == "stdin":
        done = run_cli(verb, stdin=b"[a]\nx = 1\n" * (big // 10 + 1))
    else:
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        writer = subprocess.Popen(["sh", "-c", f"yes '[a]' > {fifo}"],
                                  stderr=subprocess.DEVNULL)
        try:
            done = run_cli(verb, str(fifo))
        finally:
            writer.kill()
            writer.wait()
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "Traceback" not in err and "internal error" not in err
    assert err.count("\n") == 1 and "more than 16 MiB" in err


def test_amiconfig_output_copied_into_the_log_is_redacted(caplog):
    import logging

    from cloudinit_cernvm import bounded_process

    output = ("plugin noip: password = hunter2\n"
              "using proxy http://user:pw1@squid:3128\n"
              "plugin cernvm configured\n")
    with caplog.at_level(logging.INFO):
        bounded_process.log_output("amiconfig", output)
    assert "hunter2" not in caplog.text and "pw1" not in caplog.text
    assert "password = (hidden)" in caplog.text
    assert "http://(hidden)@squid:3128" in caplog.text
    assert "plugin cernvm configured" in caplog.text


def test_template_and_settings_warnings_are_redacted():
    from cloudinit_cernvm import amiconfig, amiconfig_settings

    part = '## template: jinja\n[a]\nx = {{ "s" | attr("password=hunter2") }}\n'
    _, warnings = amiconfig.prepare_parts([("p1", part)], {})
    assert len(warnings) == 1 and "hunter2" not in warnings[0], warnings
    assert "password=(hidden)" in warnings[0]
    _, problems = amiconfig_settings.settings_from({"amiconfig_command": {"token": "t0ps3cret"}})
    assert len(problems) == 1 and "t0ps3cret" not in problems[0], problems


def test_validate_output_hides_credentials_inside_values():
    data = b"[amiconfig]\nplugins = cernvm http://user:pw1@example.org\n"
    done = run_cli("validate", "--strict", stdin=data)
    out = done.stdout.decode()
    assert done.returncode == 1 and "pw1" not in out, out
    assert "amiconfig plugin 'http://(hidden)@example.org' does not exist" in out
