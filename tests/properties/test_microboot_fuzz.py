"""Fuzzing the microboot stage: hostile metadata answers and context disks.

Generated answers of the EC2, GCE and OpenStack services (JSON with keys
that name paths, deep nesting, line ends and quotes in values, truncated
documents, non-base64 where base64 is due, gzip) and generated context
disks (``context.sh`` with every quoting style, command substitutions, a
``ROOT_PUBKEY`` or ``user-data.txt`` that is a symlink to a file outside
the disk) go through ``fetch-context`` under busybox with only busybox and
curl on PATH. For every input:

- the stage exits 0, 1 or 2 within its budget (a hang is a failure);
- no file appears outside its work and seed directories, no command of
  the input runs (canary files), the work directory is removed;
- a seed, when written, is whole (``source`` and ``user-data``), 0700/0600,
  holds only the seed's file names, and none of it holds the secret behind
  a symlink.

``make test`` runs a modest number of inputs; ``make fuzz`` sets
``FUZZ_STAGE_EXAMPLES`` (at least 2,000) and prints the counts.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.metadata import Instance, MetadataService
from tests.microboot.conftest import FETCH, TEST_RETRY_S, busybox_path, no_seed

EXAMPLES = int(os.environ.get("FUZZ_STAGE_EXAMPLES", "120"))
#: the stage's own budget is 15 s; a run past this is a hang
HANG_S = 40.0
SECRET = b"TOP-SECRET-HOST-FILE"
SEED_NAMES = {"source", "user-data", "meta-data", "ucontext", "extra-user-data",
              "extra-ucontext", "pickup.tar.gz", "azure.iso", "vendor-data",
              "vendor-data2", "network-data"}

# --- hostile pieces -----------------------------------------------------------------

#: names a server could put where a file name is built from its answer
path_keys = st.sampled_from([
    "../../../../escaped", "/tmp/escaped", "..", ".", "", "a/b", "x\ny", "-rf", "$(touch pwned)",
    "`touch pwned`", "id", "hostname", "zone", "attributes", "ssh-keys", "user-data",
    "user-data-encoding", "instanceId", "region", "uuid", "public_keys", "a" * 300,
])
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["$(touch pwned)", "`touch pwned`", "'; touch pwned; '", '"\\"\\\\',
                     "\\u0000\\n", "a\nb\r\n", "=", "[ucernvm-begin]\nx=$(touch pwned)\n"
                     "[ucernvm-end]\n", "\x00\x01\x1b[2J"]),
)
scalar = st.one_of(nasty_text, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
json_value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(path_keys, st.text(max_size=8)),
                                                 inner, max_size=5)), max_leaves=25)


@st.composite
def json_answer(draw) -> bytes:
    """A JSON document as a hostile server sends it: valid, cut short, or deep."""
    doc = draw(st.dictionaries(st.one_of(path_keys, st.text(max_size=8)), json_value,
                               max_size=8))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()
    how = draw(st.sampled_from(["whole", "whole", "cut", "deep", "garbage"]))
    if how == "cut":
        return text[:draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "deep":
        depth = draw(st.integers(100, 20000))
        return b'{"id": "1", "x": ' + b"[" * depth + b"]" * depth + b"}"
    if how == "garbage":
        return draw(st.binary(max_size=300))
    return text


@st.composite
def user_data(draw) -> bytes:
    """A user-data body: text, bytes, gzip (good or broken), a µCernVM block."""
    body = draw(st.one_of(st.binary(max_size=200), nasty_text.map(str.encode)))
    how = draw(st.sampled_from(["plain", "plain", "gzip", "badgzip", "block", "base64"]))
    if how == "gzip":
        return gzip.compress(body)
    if how == "badgzip":
        return b"\x1f\x8b" + body
    if how == "block":
        return b"[ucernvm-begin]\n" + body + b"\n[ucernvm-end]\n"
    if how == "base64":
        return base64.b64encode(body)
    return body


reply = st.tuples(st.sampled_from([200, 200, 200, 404, 403]), user_data())


@st.composite
def cloud_case(draw) -> tuple[str, dict[str, tuple[int, bytes]]]:
    """A provider and the hostile answers its service gives."""
    provider = draw(st.sampled_from(["EC2", "GCE", "OpenStack"]))
    if provider == "EC2":
        answers = {"/latest/user-data": draw(reply),
                   "/latest/dynamic/instance-identity/document": (200, draw(json_answer())),
                   "/latest/meta-data/local-hostname": draw(reply),
                   "/latest/meta-data/public-keys/0/openssh-key": draw(reply)}
    elif provider == "GCE":
        base = "/computeMetadata/v1/instance"
        answers = {f"{base}/attributes/user-data": draw(reply),
                   f"{base}/?recursive=true": (200, draw(json_answer()))}
    else:
        answers = {"/openstack/latest/user_data": draw(reply),
                   "/openstack/latest/meta_data.json": (200, draw(json_answer()))}
    return provider, answers


def _sh_quote(value: str, style: str) -> str:
    if style == "single":
        return "'" + value.replace("'", "'\\''") + "'"
    if style == "double":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "broken":
        return "'" + value
    return value.replace(" ", "\\ ")


@st.composite
def context_sh(draw) -> bytes:
    """A context.sh with assignments in every quoting style, and traps."""
    lines = []
    names = st.sampled_from(["EC2_USER_DATA", "USER_DATA", "USERDATA", "USERDATA_ENCODING",
                             "SSH_PUBLIC_KEY", "ROOT_PUBKEY", "VMID", "SET_HOSTNAME",
                             "HOSTNAME", "ONEGATE", "X"])
    for _ in range(draw(st.integers(0, 8))):
        name = draw(names)
        encoded = name in ("USER_DATA", "USERDATA") and draw(st.booleans())
        if name == "EC2_USER_DATA" or encoded:
            value = base64.b64encode(draw(user_data())).decode()
            if draw(st.booleans()):
                value = value[: draw(st.integers(0, len(value)))] + draw(nasty_text)
        elif name == "ROOT_PUBKEY":
            value = draw(st.sampled_from(["root.pub", "link.pub", "../../../etc/passwd",
                                          "/etc/shadow", "dir/../root.pub", "$(touch pwned)"]))
        else:
            value = draw(nasty_text)
        style = draw(st.sampled_from(["single", "single", "double", "bare", "broken"]))
        prefix = draw(st.sampled_from(["", "", "export ", "  "]))
        suffix = draw(st.sampled_from(["", "", " # note", "; touch pwned", "\n$(touch pwned)"]))
        lines.append(f"{prefix}{name}={_sh_quote(value, style)}{suffix}")
    return ("\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))).encode(
        "utf-8", "surrogatepass")


@st.composite
def disk_case(draw) -> tuple[dict[str, str], str, dict[str, object]]:
    """A context disk: the machine's DMI, the disk's label and files; a value
    of "LINK" is a symlink to the secret outside the disk."""
    kind = draw(st.sampled_from(["OpenNebula", "OpenNebula", "vSphere", "ConfigDrive"]))
    if kind == "OpenNebula":
        files: dict[str, object] = {"context.sh": draw(context_sh())}
        files["root.pub"] = draw(st.sampled_from([b"ssh-ed25519 AAAA k\n", "LINK"]))
        files["link.pub"] = "LINK"
        return {}, "CONTEXT", files
    if kind == "vSphere":
        return ({"sys_vendor": "VMware, Inc."}, "cdrom",
                {"user-data.txt": draw(st.one_of(user_data(), st.just("LINK")))})
    files = {"openstack/latest/user_data": draw(st.one_of(user_data(), st.just("LINK"))),
             "openstack/latest/meta_data.json": draw(st.one_of(json_answer(), st.just("LINK")))}
    return {}, "config-2", files


# --- running the stage -------------------------------------------------------------------

class Stage:
    """Runs fetch-context in a fresh directory and judges what it left."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.bb = busybox_path(top / "bin")
        self.counts = {"inputs": 0, "seeds": 0, "no provider": 0, "no data": 0,
                       "escaped": 0, "hangs": 0, "crashes": 0}
        self.n = 0

    def run(self, dmi: dict[str, str], url: str, media: dict[str, dict[str, object]]) -> None:
        self.n += 1
        case = self.top / f"case{self.n}"
        root, mdir, tmp, seed = (case / d for d in ("root", "media", "tmp", "seed"))
        for d in (root / "sys/class/dmi/id", root / "proc", mdir, tmp):
            d.mkdir(parents=True)
        (root / "proc/cmdline").write_text("BOOT_IMAGE=/vmlinuz quiet\n")
        for name, value in dmi.items():
            (root / "sys/class/dmi/id" / name).write_text(value + "\n")
        secret = case / "secret"
        secret.write_bytes(SECRET)
        for label, files in media.items():
            for rel, data in files.items():
                path = mdir / label / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if data == "LINK":
                    path.symlink_to(secret)
                else:
                    assert isinstance(data, bytes)
                    path.write_bytes(data)
        before = self._tree(case)
        env = {"PATH": str(self.bb), "CERNVM_SYSROOT": str(root), "CERNVM_MEDIA_DIR": str(mdir),
               "CERNVM_METADATA_URL": url, "TMPDIR": str(tmp), "CERNVM_RETRY_S": TEST_RETRY_S}
        self.counts["inputs"] += 1
        start = time.monotonic()
        try:
            done = subprocess.run([str(self.bb / "sh"), str(FETCH), str(seed)], env=env,
                                  cwd=case, capture_output=True, timeout=HANG_S, check=False)
        except subprocess.TimeoutExpired:
            self.counts["hangs"] += 1
            raise AssertionError(f"fetch-context ran past {HANG_S} s") from None
        elapsed = time.monotonic() - start
        err = done.stderr.decode("utf-8", "replace")
        if done.returncode not in (0, 1, 2) or any(
                w in err for w in ("syntax error", "awk: ", "not found", "Segmentation")):
            self.counts["crashes"] += 1
            raise AssertionError(f"exit {done.returncode} after {elapsed:.1f} s: {err[-800:]}")
        self.counts[{0: "seeds", 1: "no provider", 2: "no data"}[done.returncode]] += 1
        new = self._tree(case) - before
        outside = {p for p in new if not p.startswith("seed/")}
        if outside or list(case.rglob("pwned")) or list(case.rglob("escaped*")):
            self.counts["escaped"] += 1
            raise AssertionError(f"files outside the seed: {sorted(outside)[:10]}")
        if done.returncode == 0:
            self._check_seed(seed)
        elif not no_seed(seed):  # at most the marker: source and failure, no user-data
            raise AssertionError(f"exit {done.returncode} but a seed was written")
        shutil.rmtree(case)

    @staticmethod
    def _tree(top: Path) -> set[str]:
        return {str(p.relative_to(top)) for p in top.rglob("*") if not p.is_dir()}

    @staticmethod
    def _check_seed(seed: Path) -> None:
        assert seed.stat().st_mode & 0o777 == 0o700
        names = {p.name for p in seed.iterdir()}
        assert {"source", "user-data"} <= names <= SEED_NAMES, names
        for path in seed.iterdir():
            assert path.is_file() and not path.is_symlink(), path
            assert path.stat().st_mode & 0o777 == 0o600, path
            assert SECRET not in path.read_bytes(), f"{path.name} holds the host's file"
        if (seed / "meta-data").exists():
            meta = json.loads((seed / "meta-data").read_text())
            assert isinstance(meta, dict)

    def report(self, elapsed: float) -> str:
        c = self.counts
        return (f"\nmicroboot fuzz: {c['inputs']} inputs in {elapsed:.1f} s ({c['seeds']} seeds, "
                f"{c['no data']} refused, {c['no provider']} no provider); files escaped "
                f"{c['escaped']}, hangs {c['hangs']}, crashes {c['crashes']}")


DMI = {"EC2": {"sys_vendor": "Amazon EC2"}, "GCE": {"product_name": "Google Compute Engine"},
       "OpenStack": {"product_name": "OpenStack Nova"}}
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def test_fuzz_stage_metadata_answers(tmp_path: Path) -> None:
    stage = Stage(tmp_path)
    with MetadataService("EC2", b"", instance=Instance(), lifetime=3600) as ec2, \
            MetadataService("GCE", b"", lifetime=3600) as gce, \
            MetadataService("OpenStack", b"", lifetime=3600) as ostack:
        services = {"EC2": ec2, "GCE": gce, "OpenStack": ostack}

        @FUZZ
        @given(cloud_case())
        def run(case: tuple[str, dict[str, tuple[int, bytes]]]) -> None:
            provider, answers = case
            svc = services[provider]
            svc.answers = answers
            stage.run(DMI[provider], svc.url, {})

        start = time.monotonic()
        run()
    print(stage.report(time.monotonic() - start))
    assert stage.counts["inputs"] >= min(EXAMPLES, 50)


def test_fuzz_stage_context_disks(tmp_path: Path) -> None:
    stage = Stage(tmp_path)

    @FUZZ
    @given(disk_case())
    def run(case: tuple[dict[str, str], str, dict[str, object]]) -> None:
        dmi, label, files = case
        stage.run(dmi, "http://127.0.0.1:9", {label: files})

    start = time.monotonic()
    run()
    print(stage.report(time.monotonic() - start))
    assert stage.counts["inputs"] >= min(EXAMPLES, 50)
