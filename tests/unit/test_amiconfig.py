"""Collecting, rendering and running for amiconfig: plain functions, no cloud-init.

Commands run for real (sh, the stand-in amiconfig): what is checked is how
they are started, bounded, stopped and recorded.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from cloudinit_cernvm import (
    amiconfig,
    amiconfig_metadata,
    amiconfig_settings,
    bounded_process,
    private_files,
    templates,
)

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "amiconfig"


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def script(tmp_path: Path, body: str, name: str = "cmd") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


# --- settings ----------------------------------------------------------------


def test_settings_default_to_the_real_amiconfig():
    settings, problems = amiconfig_settings.settings_from(None)
    assert settings.command == ["/usr/sbin/amiconfig"]
    assert settings.timeout == 600
    assert settings.done_file == "/var/lib/amiconfig/user.done"
    assert problems == []


def test_settings_read_command_line_and_timeout():
    settings, problems = amiconfig_settings.settings_from(
        {"amiconfig_command": "/opt/amiconfig --verbose", "amiconfig_timeout": "30",
         "amiconfig_done_file": "/tmp/x.done"})
    assert settings.command == ["/opt/amiconfig", "--verbose"]
    assert settings.timeout == 30.0 and settings.done_file == "/tmp/x.done"
    assert problems == []
    settings, _ = amiconfig_settings.settings_from({"amiconfig_command": ["/a", "b c"]})
    assert settings.command == ["/a", "b c"]


@pytest.mark.parametrize(("cfg", "fragment"), [
    ({"amiconfig_timeout": 0}, "amiconfig_timeout 0 is not a positive number"),
    ({"amiconfig_timeout": "soon"}, "amiconfig_timeout 'soon'"),
    ({"amiconfig_timeout": True}, "amiconfig_timeout True"),
    ({"amiconfig_command": ""}, "amiconfig_command '' is not a command"),
    ({"amiconfig_command": "'unclosed"}, "is not a command"),
    ({"amiconfig_done_file": "relative"}, "not an absolute path"),
])
def test_bad_settings_fall_back_with_one_message(cfg, fragment):
    settings, problems = amiconfig_settings.settings_from(cfg)
    assert len(problems) == 1 and fragment in problems[0]
    assert settings == amiconfig_settings.Settings()


# --- templates and payload ---------------------------------------------------


def test_template_header_is_recognised_like_cloud_init():
    assert templates.is_template("## template: jinja\n[a]\n")
    assert templates.is_template("## template:jinja\n")
    assert not templates.is_template("[a]\n## template: jinja\n")
    assert not templates.is_template("# template: jinja\n")


def test_template_variables_follow_cloud_init_and_add_ours():
    instance = {"v1": {"local_hostname": "h", "instance_id": "i-1", "cloud_name": "aws"},
                "ds": {"meta-data": {"local-hostname": "h"}}, "merged-cfg": {}}
    variables = templates.template_variables(instance, {"provider": "EC2", "hostname": None})
    assert variables["local_hostname"] == "h" and variables["cloud_name"] == "aws"
    assert variables["merged_cfg"] == {} and variables["provider"] == "EC2"
    assert "hostname" not in variables  # None is not a value


def test_render_template():
    jinja2 = pytest.importorskip("jinja2")
    assert jinja2
    text = "## template: jinja\n[condor]\nhost = {{ v1.local_hostname }}\nid={{ instance_id }}\n"
    out = templates.render_template(text, {"v1": {"local_hostname": "w1"}, "instance_id": "i-9"})
    assert out == "[condor]\nhost = w1\nid=i-9\n"


@pytest.mark.parametrize(("text", "fragment"), [
    ("## template: jinja\nx = {{ missing }}\n", "'missing' is undefined"),
    ("## template: jinja\nx = {{ v1.nope }}\n", "has no attribute 'nope'"),
    ("## template: jinja\n[a]\nx = {% if %}\n", "line 3"),
])
def test_render_errors_are_one_line(text, fragment):
    pytest.importorskip("jinja2")
    with pytest.raises(templates.TemplateError) as err:
        templates.render_template(text, {"v1": {}})
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_prepare_parts_keeps_a_broken_template_as_written():
    pytest.importorskip("jinja2")
    parts = [("part-001", "[amiconfig]\nplugins = a\n"),
             ("part-002", "## template: jinja\n[a]\nh = {{ hostname }}\n"),
             ("part-003", "## template: jinja\n[b]\nx = {{ nothing }}\n")]
    texts, warnings = amiconfig.prepare_parts(parts, {"hostname": "vm1"})
    assert texts == ["[amiconfig]\nplugins = a\n", "[a]\nh = vm1\n", parts[2][1]]
    assert len(warnings) == 1 and warnings[0].startswith("amiconfig part part-003:")


def test_payload_joins_parts_in_order_with_newlines():
    assert amiconfig.build_payload(["[a]\nx=1", "[b]\n", "", "[c]\ny=é\n"]) == (
        "[a]\nx=1\n[b]\n[c]\ny=é\n".encode())


def test_instance_data_prefers_the_sensitive_copy(tmp_path):
    (tmp_path / "instance-data.json").write_text('{"v1": {"a": "redacted"}}')
    assert templates.load_instance_data(str(tmp_path)) == {"v1": {"a": "redacted"}}
    (tmp_path / "instance-data-sensitive.json").write_text('{"v1": {"a": 1}}')
    assert templates.load_instance_data(str(tmp_path)) == {"v1": {"a": 1}}
    assert templates.load_instance_data(str(tmp_path / "none")) == {}


# --- files -------------------------------------------------------------------


def test_metadata_tree_is_private_and_laid_out_like_ec2(tmp_path):
    meta = amiconfig_metadata.InstanceMeta("i-1", "vm1.example.org",
                                           ["ssh-rsa AAA a", "ssh-ed25519 BBB b"],
                                           "zone-a")
    url = amiconfig_metadata.write_metadata_tree(str(tmp_path / "md"), meta, b"[a]\n")
    root = tmp_path / "md" / "2007-12-15"
    assert url == f"file:{root}"
    assert (root / "meta-data" / "instance-id").read_text() == "i-1"
    assert (root / "meta-data" / "local-hostname").read_text() == "vm1.example.org"
    assert (root / "meta-data" / "placement" / "availability-zone").read_text() == "zone-a"
    assert (root / "meta-data/public-keys/1/openssh-key").read_text() == "ssh-ed25519 BBB b\n"
    assert (root / "user-data").read_bytes() == b"[a]\n"
    for path in [tmp_path / "md", *root.rglob("*")]:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_metadata_tree_has_every_key_the_getters_read_with_defaults(tmp_path):
    amiconfig_metadata.write_metadata_tree(str(tmp_path), amiconfig_metadata.InstanceMeta(), b"")
    root = tmp_path / "2007-12-15" / "meta-data"
    found = {p.name: p.read_text() for p in root.iterdir() if p.is_file()}
    # nothing known: the documented defaults; no address, no host name invented
    assert found == {"ami-id": "ami-00000000", "ami-launch-index": "0",
                     "ami-manifest-path": "(unknown)", "instance-type": "unknown",
                     "reservation-id": "r-00000000", "security-groups": "default"}


def test_metadata_tree_takes_the_providers_values_then_the_machines(tmp_path):
    ec2 = {"ami-id": "ami-0abc", "ami-launch-index": 3, "instance-type": "m5.large",
           "local-ipv4": "10.0.0.5", "public-ipv4": "203.0.113.7",
           "public-hostname": "ec2-203-0-113-7.compute.amazonaws.com",
           "reservation-id": "r-0123", "security-groups": ["web", "ssh"]}
    amiconfig_metadata.write_metadata_tree(str(tmp_path / "ec2"), amiconfig_metadata.InstanceMeta(
        "i-1", "ip-10-0-0-5", meta_data=ec2, local_ipv4="192.0.2.9"), b"")
    root = tmp_path / "ec2" / "2007-12-15" / "meta-data"
    assert (root / "ami-launch-index").read_text() == "3"
    assert (root / "local-ipv4").read_text() == "10.0.0.5"  # the provider's, not the machine's
    assert (root / "public-ipv4").read_text() == "203.0.113.7"
    assert (root / "security-groups").read_text() == "web\nssh"
    assert (root / "ami-id").read_text() == "ami-0abc"
    # OpenStack spells them otherwise; the machine gives the address
    openstack = {"launch_index": 1, "hostname": "vm.novalocal", "uuid": "u-1"}
    amiconfig_metadata.write_metadata_tree(str(tmp_path / "os"), amiconfig_metadata.InstanceMeta(
        "u-1", None, meta_data=openstack, local_ipv4="192.0.2.9"), b"")
    root = tmp_path / "os" / "2007-12-15" / "meta-data"
    assert (root / "ami-launch-index").read_text() == "1"
    assert (root / "local-hostname").read_text() == "vm.novalocal"
    assert (root / "public-hostname").read_text() == "vm.novalocal"
    assert (root / "local-ipv4").read_text() == "192.0.2.9"
    assert (root / "public-ipv4").read_text() == "192.0.2.9"


def test_local_ipv4_is_the_default_routes_interface(tmp_path, monkeypatch):
    from cloudinit_cernvm import amiconfig_metadata as md

    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "route").write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
        "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\n")
    assert md.default_route_interface(str(tmp_path)) == "eth0"
    assert md.interface_address("lo") == "127.0.0.1"
    monkeypatch.setattr(md, "interface_address", lambda name: f"addr-of-{name}")
    assert md.local_ipv4(str(tmp_path)) == "addr-of-eth0"
    (tmp_path / "net" / "route").write_text("Iface\tDestination\n")
    assert md.local_ipv4(str(tmp_path)) is None


def test_environment_is_a_copy_with_the_two_variables():
    base = {"PATH": "/bin", "AMICONFIG_STALE": "x"}
    env = amiconfig.amiconfig_environment(base, "/p/ud", "file:/p/md")
    assert env == {"PATH": "/bin", "AMICONFIG_LOCAL_USER_DATA": "/p/ud",
                   "AMICONFIG_CONTEXT_URL": "file:/p/md"}
    assert base == {"PATH": "/bin", "AMICONFIG_STALE": "x"}


def test_write_private_replaces_atomically(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    path.chmod(0o644)
    private_files.write_private(str(path), b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_mark_done_touches_like_amiconfig_sh(tmp_path):
    done = tmp_path / "var" / "lib" / "amiconfig" / "user.done"
    amiconfig.mark_done(str(done))
    assert done.read_bytes() == b""
    amiconfig.mark_done(str(done))
    assert done.exists()


# --- running -----------------------------------------------------------------


def test_run_records_status_and_output(tmp_path):
    cmd = script(tmp_path, 'echo out; echo err >&2; echo "$GREETING"; exit 4\n')
    out = tmp_path / "out.log"
    result = bounded_process.run_bounded([cmd], {"GREETING": "hi", "PATH": "/bin:/usr/bin"}, 10,
                                         str(out))
    assert result.status == 4 and result.signal is None and not result.timed_out
    assert result.completed
    assert result.output == "out\nerr\nhi\n" and mode(out) == 0o600
    assert result.problem("amiconfig", 10) == "amiconfig exited with status 4"


def test_run_of_a_missing_command(tmp_path):
    result = bounded_process.run_bounded([str(tmp_path / "absent")], {}, 10, str(tmp_path / "o"))
    assert not result.completed and result.status is None
    assert result.problem("amiconfig", 10) == (
        f"amiconfig not run: {tmp_path / 'absent'}: No such file or directory")


def test_run_of_a_command_that_is_not_executable(tmp_path):
    path = tmp_path / "plain"
    path.write_text("#!/bin/sh\n")
    result = bounded_process.run_bounded([str(path)], {}, 10, str(tmp_path / "o"))
    assert "Permission denied" in result.problem("amiconfig", 10)


def test_run_of_a_crashing_command(tmp_path):
    cmd = script(tmp_path, "kill -SEGV $$\n")
    result = bounded_process.run_bounded([cmd], {}, 10, str(tmp_path / "o"))
    assert result.signal == signal.SIGSEGV and not result.completed
    assert result.problem("amiconfig", 10) == "amiconfig was killed by signal SIGSEGV"


def test_run_past_the_limit_kills_the_whole_group(tmp_path):
    pids = tmp_path / "pids"
    # the child ignores SIGTERM: only the group's SIGKILL ends it
    cmd = script(tmp_path, f"(trap '' TERM; sleep 60) & echo $$ $! > {pids}; sleep 60\n")
    started = time.monotonic()
    result = bounded_process.run_bounded([cmd], {"PATH": "/bin:/usr/bin"}, 0.5, str(tmp_path / "o"),
                                   grace=0.5)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.completed
    assert result.problem("amiconfig", 0.5) == (
        "amiconfig ran past its limit of 0.5 s and was killed")
    deadline = time.monotonic() + 5
    for pid in map(int, pids.read_text().split()):
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid), pid


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_run_waits_for_the_end_or_the_limit_either_way(tmp_path, monkeypatch, pidfd):
    # Linux 5.3 and Python 3.9 give a pidfd; without it, Popen.wait polls.
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("no os.pidfd_open in this Python")
    done = bounded_process.run_bounded([script(tmp_path, "sleep 0.2; exit 3\n")],
                                 {"PATH": "/bin:/usr/bin"}, 10, str(tmp_path / "o"))
    assert (done.status, done.timed_out) == (3, False) and done.seconds >= 0.2
    late = bounded_process.run_bounded([script(tmp_path, "exec sleep 30\n")],
                                 {"PATH": "/bin:/usr/bin"}, 0.3, str(tmp_path / "o"), grace=0.1)
    assert late.timed_out and late.signal == signal.SIGTERM and late.status is None


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_run_does_not_wait_for_a_daemon_holding_the_output(tmp_path):
    cmd = script(tmp_path, "setsid sleep 30 >/dev/null 2>&1 & echo started\n")
    started = time.monotonic()
    result = bounded_process.run_bounded([cmd], {"PATH": "/bin:/usr/bin"}, 20, str(tmp_path / "o"))
    assert result.status == 0 and time.monotonic() - started < 5


# --- a whole run, with the stand-in amiconfig ---------------------------------


DEFAULT_CFG = "[general]\nenabled_plugins = rootsshkeys\ndisabled_plugins =\n"


@pytest.fixture
def fake_env(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FAKE_AMICONFIG_RECORD": str(record)}
    return record, env


def fake_command(tmp_path: Path, config: str = DEFAULT_CFG) -> list[str]:
    """The stand-in, with its default.cfg (``-c``, as the real amiconfig takes it)."""
    cfg = tmp_path / "default.cfg"
    cfg.write_text(config)
    return [sys.executable, str(FAKE), "-c", str(cfg)]


META = amiconfig_metadata.InstanceMeta("i-77", "vm77", ["ssh-ed25519 KEY u@h"])


def test_contextualize_runs_scripts_then_amiconfig_once(tmp_path, fake_env, caplog):
    record_dir, env = fake_env
    cernvm = tmp_path / "instance" / "cernvm"
    settings = amiconfig_settings.Settings(fake_command(tmp_path), 30,
                                  str(tmp_path / "state" / "user.done"))
    scripts = [
        amiconfig.Script("part-001", f"#!/bin/sh\necho one >> {record_dir}/events\n"),
        amiconfig.Script("bad/../name", f"#!/bin/sh\necho two >> {record_dir}/events\nexit 2\n"),
    ]
    parts = ["[amiconfig]\nplugins = condor\n", "[condor]\nusers = a:b:c\n"]
    with caplog.at_level(logging.INFO):
        record = amiconfig.contextualize(str(cernvm), parts, scripts, settings, META, env)
    assert (record_dir / "events").read_text().split() == ["one", "two", "amiconfig"]
    assert json.loads((record_dir / "run-1" / "plugins.json").read_text())["condor"] == [0, ""]
    run = record_dir / "run-1"
    assert (run / "payload").read_text() == "".join(parts)
    assert json.loads((run / "modes.json").read_text()) == {"file": "0o600", "dir": "0o700"}
    fake_env_seen = json.loads((run / "env.json").read_text())
    assert fake_env_seen["AMICONFIG_LOCAL_USER_DATA"] == str(cernvm / "amiconfig-user-data")
    assert json.loads((run / "metadata.json").read_text()) == {
        "meta-data/public-keys/0/openssh-key": "ssh-ed25519 KEY u@h\n"}
    assert "AMICONFIG_LOCAL_USER_DATA" not in os.environ
    # the record
    assert record["exit_status"] == 0 and record["parts"] == 2
    assert record["done_marker"] == settings.done_file and Path(settings.done_file).exists()
    assert [s["exit_status"] for s in record["before_scripts"]] == [0, 2]
    assert record["warnings"] == ["sh.before script bad/../name exited with status 2"]
    assert json.loads((cernvm / "amiconfig.json").read_text()) == record
    assert amiconfig.already_done(str(cernvm))
    # one warning per problem; the "Plugin disabled" chatter stays in amiconfig.log
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "CernVM: sh.before script bad/../name exited with status 2"]
    assert "Plugin disabled" not in caplog.text
    assert "Plugin disabled by configuration, not executing: squid" in (
        cernvm / "amiconfig.log").read_text()
    assert record["plugins"]["enabled"] == ["condor", "rootsshkeys"]
    assert record["plugins"]["failed"] == [] and record["plugins"]["succeeded"] == 2
    assert sorted(p.name for p in (cernvm / "scripts-before").iterdir() if
                  not p.name.endswith(".log")) == ["00-part-001", "01-bad_.._name"]


def test_contextualize_with_a_failing_plugin_marks_done(tmp_path, fake_env, caplog):
    _, env = fake_env
    settings = amiconfig_settings.Settings(fake_command(tmp_path), 30, str(tmp_path / "user.done"))
    with caplog.at_level(logging.INFO):
        record = amiconfig.contextualize(str(tmp_path / "c"), ["[amiconfig]\nplugins = fail\n"],
                                         [], settings, META, env)
    assert record["exit_status"] == 1 and record["done_marker"]
    # one warning, naming the plugin (only rootsshkeys and fail ran; rootsshkeys printed ok)
    assert record["plugins"]["failed"] == [{
        "plugin": None, "message": "failing as asked", "candidates": ["fail", "rootsshkeys"],
        "known_bug": False}]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == ["CernVM: an amiconfig plugin failed (one of fail, rootsshkeys):"
                      " failing as asked"]


def test_a_failed_plugin_is_named_in_one_warning(tmp_path, fake_env, caplog):
    _, env = fake_env
    settings = amiconfig_settings.Settings(fake_command(tmp_path, "[general]\nenabled_plugins =\n"
                                               "disabled_plugins = rootsshkeys\n"),
                                  30, str(tmp_path / "user.done"))
    with caplog.at_level(logging.INFO):
        record = amiconfig.contextualize(
            str(tmp_path / "c"), ["[amiconfig]\nplugins = cernvm\n[cernvm]\nusers = a:b:c\n"],
            [], settings, META, env)
    assert record["exit_status"] == 1 and record["done_marker"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert warned[0].startswith("CernVM: amiconfig plugin cernvm failed: [Errno 2] No such file")
    assert "known bug" in warned[0]
    assert record["plugins"]["failed"][0]["known_bug"]


def test_an_uppercase_amiconfig_section_crash_is_explained(tmp_path, fake_env, caplog):
    _, env = fake_env
    settings = amiconfig_settings.Settings(fake_command(tmp_path), 30, str(tmp_path / "user.done"))
    with caplog.at_level(logging.INFO):
        record = amiconfig.contextualize(str(tmp_path / "c"), ["[AMICONFIG]\nplugins = a\n"],
                                         [], settings, META, env)
    assert record["exit_status"] == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == ["CernVM: amiconfig exited with status 1: a section named [AMICONFIG]"
                      " crashes amiconfig (write it [amiconfig])"]


def test_a_done_file_present_before_stops_the_run(tmp_path, fake_env, caplog):
    record_dir, env = fake_env
    done = tmp_path / "state" / "user.done"
    done.parent.mkdir()
    done.touch()
    settings = amiconfig_settings.Settings(fake_command(tmp_path), 30, str(done))
    scripts = [amiconfig.Script("s", f"#!/bin/sh\necho s >> {record_dir}/events\n")]
    with caplog.at_level(logging.INFO):
        record = amiconfig.contextualize(str(tmp_path / "c"), [], scripts, settings, META, env)
    assert not (record_dir / "events").exists()
    assert f"{done} exists" in record["skipped"] and record["exit_status"] is None
    assert json.loads((tmp_path / "c" / "amiconfig.json").read_text()) == record
    # the user's sh.before script was not applied: the user must know
    assert len(record["warnings"]) == 1 and "not applied" in record["warnings"][0]
    # nothing asked of amiconfig: an INFO line only
    record = amiconfig.contextualize(str(tmp_path / "d"), [], [], settings, META, env)
    assert record["skipped"] and record["warnings"] == []


def test_contextualize_with_a_missing_amiconfig_keeps_the_payload(tmp_path, fake_env):
    _, env = fake_env
    settings = amiconfig_settings.Settings([str(tmp_path / "nope")], 30,
                                           str(tmp_path / "user.done"))
    record = amiconfig.contextualize(str(tmp_path / "c"), ["[a]\nx = 1\n"], [], settings, META, env)
    assert record["error"] and record["done_marker"] is None
    assert not Path(settings.done_file).exists() and not amiconfig.already_done(str(tmp_path / "c"))
    assert (tmp_path / "c" / "amiconfig-user-data").read_text() == "[a]\nx = 1\n"
    assert len(record["warnings"]) == 1 and "not run" in record["warnings"][0]


def test_without_amiconfig_parts_amiconfig_still_runs(tmp_path, fake_env):
    record_dir, env = fake_env
    settings = amiconfig_settings.Settings(fake_command(tmp_path), 30, str(tmp_path / "user.done"))
    scripts = [amiconfig.Script("s", f"#!/bin/sh\necho s >> {record_dir}/events\n")]
    record = amiconfig.contextualize(str(tmp_path / "c"), [], scripts, settings, META, env)
    assert (record_dir / "events").read_text() == "s\namiconfig\n"
    assert record["parts"] == 0 and record["exit_status"] == 0
    assert record["done_marker"] == settings.done_file
    # the default plugin ran on the instance's key
    configured = json.loads((record_dir / "run-1" / "configured.json").read_text())
    assert configured == {"rootsshkey": "ssh-ed25519 KEY u@h\n"}


def test_without_amiconfig_installed_nothing_asked_is_no_warning(tmp_path, fake_env, caplog):
    _, env = fake_env
    settings = amiconfig_settings.Settings([str(tmp_path / "nope")], 30,
                                           str(tmp_path / "user.done"))
    with caplog.at_level(logging.INFO):
        record = amiconfig.contextualize(str(tmp_path / "c"), [], [], settings, META, env)
    assert "not installed" in record["skipped"] and record["done_marker"] is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
