"""What amiconfig receives equals what it read from the original context.

The oracle is the stand-in ``tests/fakes/amiconfig``, which follows the real
parser's rules (REAL-AGENTS.md): each test reads a text with it, once as
CernVM's ``amiconfig.sh`` handed it over (the whole user-data), once as the
part-handler hands it over (its parts joined by ``amiconfig_input``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloudinit_cernvm import amiconfig, old_syntax
from cloudinit_cernvm import amiconfig_input as ami
from cloudinit_cernvm.content_types import AMICONFIG, UCERNVM

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "amiconfig"
REAL = Path(__file__).resolve().parents[1] / "data" / "real"
DEFAULTS = "[general]\nenabled_plugins = rootsshkeys, hostname\ndisabled_plugins = hostname\n"


def stand_in(tmp_path: Path, text: str, defaults: str = DEFAULTS) -> tuple[int, dict, str]:
    """Run the stand-in on ``text``: exit status, sections read, its output."""
    run = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
    run.mkdir()
    (run / "ud").write_text(text, encoding="utf-8", errors="surrogateescape")
    (run / "default.cfg").write_text(defaults)
    done = subprocess.run(
        [sys.executable, str(FAKE), "-c", str(run / "default.cfg")],
        env={"AMICONFIG_LOCAL_USER_DATA": str(run / "ud"), "AMICONFIG_CONTEXT_URL": f"file:{run}",
             "FAKE_AMICONFIG_RECORD": str(run / "rec"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30)
    sections_file = run / "rec" / "run-1" / "sections.json"
    sections = json.loads(sections_file.read_text()) if sections_file.exists() else {}
    return done.returncode, sections, done.stderr


def handler_payload(text: str) -> str:
    """The payload the handler builds from the converted user-data's parts."""
    pieces = []
    for part in old_syntax.split_old_syntax(text):
        kind = {AMICONFIG: ami.AMICONFIG, UCERNVM: ami.UCERNVM}.get(part.content_type)
        if kind:
            pieces.append(ami.Piece(kind, "part", part.text))
    return amiconfig.build_payload(ami.payload_texts(pieces)).decode()


# --- the stand-in follows the real parser's rules ------------------------------


def test_stand_in_reads_like_the_real_parser(tmp_path):
    text = ("#!/bin/sh\nfoo=dropped-before-the-first-header\n"
            "[cernvm] # note\r\n"
            "Organisations = atlas ; cut\r\n"
            "  indented = dropped\n"
            "users: alice:alice:pw\n"
            "# comment = no\n; also = no\nrem x = no\n"
            "proxy = http://p:3128;kept\n"
            "[condor]\npool = one\n[cernvm]\norganisations = cms\n"
            "empty = \"\"\n")
    status, sections, _ = stand_in(tmp_path, text)
    assert status == 0
    assert sections == {
        "cernvm": {"organisations": "cms", "users": "alice:alice:pw",
                   "proxy": "http://p:3128;kept", "empty": ""},
        "condor": {"pool": "one"},
    }
    # the package's reading agrees with the oracle
    assert ami.read_sections(text) == sections


def test_stand_in_plugins_defaults_unknown_names_and_the_uppercase_crash(tmp_path):
    status, _, out = stand_in(tmp_path, "[amiconfig]\nplugins = condor no_such_plugin\n")
    assert status == 0  # an unknown name is ignored
    outcome = ami.read_output(out)
    assert outcome.succeeded == 2 and outcome.failures == []  # rootsshkeys (default), condor
    assert "hostname" in outcome.disabled and "condor" not in outcome.disabled
    assert ami.enabled_plugins(ami.default_plugins(DEFAULTS), ami.read_sections(
        "[amiconfig]\nplugins = condor no_such_plugin\n")) == ["condor", "no_such_plugin",
                                                               "rootsshkeys"]
    status, _, out = stand_in(tmp_path, "[amiconfig]\nplugins = cernvm\n"
                              "disabled_plugins = rootsshkeys\n")
    assert status == 1
    outcome = ami.read_output(out)
    assert outcome.failures == [ami.KNOWN_CERNVM_BUG]
    assert outcome.named_failures(["cernvm"])[0]["plugin"] == "cernvm"
    status, _, out = stand_in(tmp_path, "[AMICONFIG]\nplugins = condor\n")
    assert status == 1 and "KeyError" in out
    assert ami.crashing_section({"AMICONFIG": {}}) == "AMICONFIG"


# --- the handler's payload reads as the original --------------------------------


def test_options_after_the_ucernvm_block_stay_in_ucernvm_end(tmp_path):
    original = ("[amiconfig]\nplugins = cernvm\n[cernvm]\norganisations = atlas\n"
                "[ucernvm-begin]\nrepositories = grid\ncvmfs_branch = cernvm-prod.cern.ch\n"
                "[ucernvm-end]\nusers = alice:alice:pw\n[condor]\npool = p\n")
    _, before, _ = stand_in(tmp_path, original)
    _, after, _ = stand_in(tmp_path, handler_payload(original))
    assert after == before
    assert "repositories" not in after["cernvm"] and after["ucernvm-end"] == {
        "users": "alice:alice:pw"}


def test_a_part_without_header_never_lands_in_the_previous_section(tmp_path):
    pieces = [ami.Piece(ami.AMICONFIG, "one", "[cernvm]\norganisations = atlas\n"),
              ami.Piece(ami.AMICONFIG, "two", "stray = 1\n[condor]\npool = p\n"),
              ami.Piece(ami.EXTRA, "/cernvm/extra-user-data", "site = x\n[squid]\nport = 1\n")]
    payload = amiconfig.build_payload(ami.payload_texts(pieces)).decode()
    _, sections, _ = stand_in(tmp_path, payload)
    assert sections == {"cernvm": {"organisations": "atlas"}, "condor": {"pool": "p"},
                        "squid": {"port": "1"}}


# (lhcb-openstack-context.txt and cernvm-online-user-data.txt start with a
# script with no exit line: userdata.py, issue 19, converts them as one script)
@pytest.mark.parametrize("name", ["cms-ec2-user-data.txt", "alice-vaf-user-data-slave.txt"])
def test_real_contexts_read_the_same_amiconfig_sections(tmp_path, name):
    original = (REAL / name).read_text(errors="surrogateescape")
    # a script's own "[ ... ]" test lines were sections to the original: not amiconfig text
    in_scripts = {m.group("header") for part in old_syntax.split_old_syntax(original)
                  if part.content_type.startswith("text/x-shellscript")
                  for m in map(ami.SECTION_LINE.match, part.text.split("\n")) if m}
    _, before, _ = stand_in(tmp_path, original)
    _, after, _ = stand_in(tmp_path, handler_payload(original))
    # every section and option of the amiconfig text, same values, same section;
    # the original also took lines of other parts (YAML keys after a header)
    for section, options in after.items():
        for key, value in options.items():
            assert before.get(section, {}).get(key) == value, (section, key)
    assert set(after) == set(before) - in_scripts, set(before) ^ set(after)


# --- the real amiconfig, where it is installed (Python 2) ------------------------

REAL_READER = (
    "import sys, json\n"
    "from amiconfig.userdata import UserData\n"
    "class Id(object):\n"
    "    def getUserData(self):\n"
    "        return open(sys.argv[1]).read()\n"
    "ud = UserData(Id())\n"
    "sys.stdout.write(json.dumps(dict((k, dict((o, v) for o, v in s.items()"
    " if o != '__name__')) for k, s in ud._sections.items())))\n"
)


def _python2_with_amiconfig() -> str | None:
    import shutil

    for python in (shutil.which("python2.7"), shutil.which("python2"),
                   str(Path.home() / ".pyenv" / "versions" / "2.7.18" / "bin" / "python")):
        if not python or not Path(python).exists():
            continue
        try:
            done = subprocess.run([python, "-c", "import amiconfig.userdata"],
                                  capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return python
    return None


def test_the_real_parser_reads_the_payload_as_the_original(tmp_path):
    python = _python2_with_amiconfig() if Path("/usr/sbin/amiconfig").exists() else None
    if python is None:
        pytest.skip("the real amiconfig (Python 2, /usr/sbin/amiconfig) is not installed")
    original = ("[amiconfig]\nplugins = cernvm\n[cernvm]\norganisations = atlas\n"
                "[ucernvm-begin]\nrepositories = grid\n[ucernvm-end]\nusers = a:b:c\n")
    results = []
    for text in (original, handler_payload(original)):
        path = tmp_path / f"ud{len(results)}"
        path.write_text(text)
        done = subprocess.run([python, "-c", REAL_READER, str(path)], capture_output=True,
                              text=True, timeout=30, check=True)
        results.append(json.loads(done.stdout))
    assert results[0] == results[1]
    _, oracle, _ = stand_in(tmp_path, original)
    assert results[0] == oracle
