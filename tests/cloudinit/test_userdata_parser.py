"""Real cloud-init's user-data processor sees exactly the parts the converter wrote.

Each cloud-init release under test (``tests/cloudinit-versions``, unpacked
by ``tools/bootstrap``) runs ``cloudinit.user_data.UserDataProcessor`` in a
subprocess of this virtualenv's Python over a batch of converted
documents; the types, payloads, order and CernVM script markers it reports
must be those of the MIME parts the converter wrote.
"""

from __future__ import annotations

import base64
import email
import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudinit_cernvm import old_syntax, userdata
from tests.harness import sandbox
from tests.properties.strategies import ascii_line, documents, render

TESTS = Path(__file__).resolve().parent.parent

SAMPLES = TESTS / "data" / "samples"

PROBE = r"""
import base64, json, sys, tempfile
from cloudinit import helpers, user_data, util

docs = json.load(open(sys.argv[1]))
tmp = tempfile.mkdtemp()
paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
result = []
for doc in docs:
    msg = user_data.UserDataProcessor(paths).process(base64.b64decode(doc))
    parts = []
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        payload = util.fully_decoded_payload(part)
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8", "surrogateescape")
        parts.append([part.get_content_type(), payload, part.get("X-CernVM-Script")])
    result.append(parts)
json.dump(result, sys.stdout)
"""


releases = sandbox.wanted_releases


def what_cloud_init_sees(version: str, docs: list[bytes], tmp_path: Path) -> list[list[list]]:
    batch = tmp_path / f"docs-{version}.json"
    batch.write_text(json.dumps([base64.b64encode(d).decode() for d in docs]))
    env = {**os.environ, "PYTHONPATH": str(sandbox.site_packages(version))}
    done = subprocess.run(
        [str(sandbox.python_for(version)), "-c", PROBE, str(batch)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"cloud-init {version}: the probe failed:\n{done.stderr[-2000:]}"
    return json.loads(done.stdout)


def written(mime: bytes) -> list[list]:
    """The parts as the converter wrote them."""
    msg = email.message_from_bytes(mime)
    return [
        [p.get_content_type(), p.get_payload(decode=True).decode("utf-8"), p.get("X-CernVM-Script")]
        for p in msg.walk()
        if not p.is_multipart()
    ]


def check_batch(inputs: list[bytes], tmp_path: Path) -> None:
    converted = [userdata.normalize(raw) for raw in inputs]
    expected = [written(mime) for mime in converted]
    for version in releases():
        seen = what_cloud_init_sees(version, converted, tmp_path)
        assert len(seen) == len(expected), f"cloud-init {version}: documents lost"
        for index, (got, want) in enumerate(zip(seen, expected)):
            assert got == want, f"cloud-init {version}, document {index}: parts differ"


EDGE_CASES = [
    b"#!/bin/sh.before\necho before\nexit\n[amiconfig]\nplugins = cernvm\n[cernvm]\nusers = a:b:\n",
    b"#!/bin/sh.after\necho after\nexit 0\n[ucernvm-begin]\ncernvm_inject=H4sI==\n[ucernvm-end]",
    b"[cernvm]\r\nx = 1\r\n#cloud-config\r\nruncmd:\r\n  - [ls, -l]\r\n[condor]\r\nlowport = 1\r\n",
    (
        b'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'
        b"--b\nContent-Type: text/ucernvm\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(b"[ucernvm-begin]\ncvmfs_branch=cernvm-prod.cern.ch\n[ucernvm-end]\n")
        + b"--b\nContent-Type: text/amiconfig-user-data\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(b"[amiconfig]\nplugins = cernvm\n[cernvm]\nusers = a:b:\n")
        + b"--b\nContent-Type: text/plain\n\n[ucernvm-begin]\nresize_rootfs=on\n[ucernvm-end]\n"
        + b"--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh.before\necho x\n"
        + b"--b\nContent-Type: text/cloud-config\nMerge-Type: list(append)\n\n#cloud-config\na: 1\n"
        + b"--b--\n"
    ),
    # non-ASCII text: written quoted-printable, it must arrive byte for byte
    "#!/bin/sh\necho Grüße € ✓\nexit\n[cernvm]\nusers = jürgen:cms:\n"
    "[ucernvm-begin]\ncvmfs_server=crépuscule.example.org\n[ucernvm-end]\n".encode(),
]


@pytest.mark.parametrize(
    "name", ["legacy-mixed.txt", "legacy-ec2-cms.txt", "legacy-atlas-panda.txt"]
)
def test_samples_reach_cloud_init_as_written(name, tmp_path):
    check_batch([(SAMPLES / name).read_bytes()], tmp_path)


def test_edge_cases_reach_cloud_init_as_written(tmp_path):
    check_batch(EDGE_CASES, tmp_path)


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(documents(ascii_line), min_size=15, max_size=15))
def test_generated_documents_reach_cloud_init_as_written(tmp_path_factory, batch):
    docs = [render(sections).encode() for sections in batch]
    docs = [d for d in docs if old_syntax.is_old_syntax(d.decode())]
    check_batch(docs, tmp_path_factory.mktemp("batch"))
