"""Reading the seed: plain functions, no cloud-init, no root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cloudinit_cernvm import providers, seed


def write(d: Path, **files: str | bytes) -> Path:
    d.mkdir(mode=0o700, exist_ok=True)
    for name, value in files.items():
        p = d / name.replace("_", "-")
        p.write_bytes(value.encode() if isinstance(value, str) else value)
        p.chmod(0o600)
    return d


def test_no_directory_is_no_seed(tmp_path):
    with pytest.raises(seed.NoSeed):
        seed.read_seed(str(tmp_path / "absent"))


def test_directory_without_source_is_no_seed(tmp_path):
    write(tmp_path / "s", user_data="x")
    with pytest.raises(seed.NoSeed, match="no 'source' file"):
        seed.read_seed(str(tmp_path / "s"))


def test_legacy_seed_without_meta_data(tmp_path):
    d = write(tmp_path / "s", source="OpenNebula\n", user_data="[cernvm]\nusers = a:b:\n",
              ucontext="_UCONTEXT_CVMFS_BRANCH=prod\n_UCONTEXT_RESIZE_ROOTFS=0\nnoise\n")
    s = seed.read_seed(str(d))
    assert s.provider == "OpenNebula" and s.cloud_name == "opennebula"
    assert s.user_data == b"[cernvm]\nusers = a:b:\n"
    assert s.meta_data == {}
    assert s.ucontext == {"_UCONTEXT_CVMFS_BRANCH": "prod", "_UCONTEXT_RESIZE_ROOTFS": "0"}
    assert s.problems == []


def test_ucontext_alone_without_the_user_data(tmp_path):
    d = write(tmp_path / "s", source="EC2\n", ucontext="_UCONTEXT_CVMFS_BRANCH=prod\nnoise\n")
    (d / "user-data").mkdir()   # not read: a directory would refuse the whole seed
    assert seed.read_ucontext(str(d)) == {"_UCONTEXT_CVMFS_BRANCH": "prod"}
    (d / "ucontext").unlink()
    assert seed.read_ucontext(str(d)) == {}
    (d / "ucontext").mkdir()
    with pytest.raises(seed.SeedError, match=r"cannot read .*ucontext"):
        seed.read_ucontext(str(d))


@pytest.mark.parametrize(("name", "cloud"), sorted(providers.CLOUD_NAMES.items()))
def test_every_provider_maps_to_cloud_inits_spelling(tmp_path, name, cloud):
    s = seed.read_seed(str(write(tmp_path / "s", source=name.upper() + "\n", user_data="")))
    assert (s.provider, s.cloud_name, s.known_provider) == (name, cloud, True)


def test_unknown_provider_is_a_problem_not_a_failure(tmp_path):
    s = seed.read_seed(str(write(tmp_path / "s", source="Hetzner\n", user_data="")))
    assert s.provider == "Hetzner" and s.cloud_name == "unknown" and not s.known_provider
    assert len(s.problems) == 1 and "unknown provider 'Hetzner'" in s.problems[0]


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ("{broken", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"instance-id": 5}), "'instance-id' is not a string"),
        (json.dumps({"public-keys": {"a": 1}}), "'public-keys' is not a list"),
    ],
)
def test_bad_meta_data_is_ignored_with_one_line(tmp_path, meta, problem):
    s = seed.read_seed(str(write(tmp_path / "s", source="EC2", user_data="", meta_data=meta)))
    assert [p for p in s.problems if problem in p] and all("\n" not in p for p in s.problems)
    assert "instance-id" not in s.meta_data


def test_public_keys_as_text_become_a_list(tmp_path):
    meta = json.dumps({"public-keys": "ssh-rsa AAA a\n\nssh-ed25519 BBB b\n"})
    s = seed.read_seed(str(write(tmp_path / "s", source="EC2", user_data="", meta_data=meta)))
    assert s.meta_data["public-keys"] == ["ssh-rsa AAA a", "ssh-ed25519 BBB b"]


def test_source_without_user_data_is_the_marker_of_a_failed_stage(tmp_path):
    d = write(tmp_path / "s", source="ec2\n")
    with pytest.raises(seed.StageFailed, match="recognised EC2 but fetched no user-data") as e:
        seed.read_seed(str(d))
    assert e.value.provider == "EC2"
    assert isinstance(e.value, seed.NoSeed)  # there is no context to use


def test_the_markers_failure_line_says_why(tmp_path):
    d = write(tmp_path / "s", source="EC2\n",
              failure="silent: connected, no answer (5 requests in 19 s)\nmore\n")
    with pytest.raises(seed.StageFailed) as e:
        seed.read_seed(str(d))
    assert (e.value.kind, e.value.why) == ("silent", "connected, no answer (5 requests in 19 s)")
    assert "without user-data: silent: connected, no answer (5 requests in 19 s))" in str(e.value)
    assert "more" not in str(e.value)


@pytest.mark.parametrize(("text", "kind", "why"), [
    (None, "", ""),                                 # an older stage: no failure file
    ("no kind here\n", "", "no kind here"),
    ("x" * 5000, "", "x" * seed.MAX_FAILURE_SHOWN),
    ("slow: " + "y" * 5000, "slow", "y" * seed.MAX_FAILURE_SHOWN),
])
def test_the_markers_failure_line_is_bounded_and_optional(tmp_path, text, kind, why):
    files = {"source": "OpenStack\n"} if text is None else {"source": "OpenStack\n",
                                                             "failure": text}
    d = write(tmp_path / "s", **files)
    with pytest.raises(seed.StageFailed) as e:
        seed.read_seed(str(d))
    assert (e.value.kind, e.value.why) == (kind, why)


def test_the_marker_with_an_unknown_provider_keeps_its_name_bounded(tmp_path):
    d = write(tmp_path / "s", source="Hetzner " + "x" * 200 + "\n")
    with pytest.raises(seed.StageFailed) as e:
        seed.read_seed(str(d))
    assert e.value.provider.startswith("Hetzner")
    assert "x" * 41 not in str(e.value)  # the name shown is cut at 40 characters


@pytest.mark.parametrize("kind", ["directory", "too-large"])
def test_unusable_user_data_refuses_the_seed(tmp_path, kind, monkeypatch):
    d = write(tmp_path / "s", source="EC2")
    if kind == "directory":
        (d / "user-data").mkdir()
    elif kind == "too-large":
        monkeypatch.setattr(seed, "MAX_USER_DATA", 10)
        (d / "user-data").write_bytes(b"x" * 11)
    with pytest.raises(seed.SeedError, match=r"cannot read .*user-data"):
        seed.read_seed(str(d))


def test_a_seed_of_an_existing_image_is_read_and_made_private(tmp_path):
    # µCernVM's 13context_epilog has no umask: 0755/0644, an empty ucontext,
    # its extra files
    d = write(tmp_path / "s", source="EC2", user_data="secret")
    (d / "ucontext").write_text("")
    (d / "pickup.tar.gz").write_bytes(b"\x1f\x8b")
    (d / "ami-contextualized").write_text("")
    os.chmod(d, 0o755)
    for p in d.iterdir():
        p.chmod(0o644)
    s = seed.read_seed(str(d))
    assert s.problems == [] and s.user_data == b"secret"
    assert d.stat().st_mode & 0o777 == 0o755  # reading alone changes nothing
    changed = seed.tighten_modes(str(d))
    assert changed is not None and "directory 0755 -> 0700" in changed
    assert "user-data 0644 -> 0600" in changed
    assert d.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in d.iterdir()} == dict.fromkeys(
        ["source", "user-data", "ucontext", "pickup.tar.gz", "ami-contextualized"], 0o600)
    assert seed.tighten_modes(str(d)) is None  # nothing left to do


def test_tightening_follows_no_link(tmp_path):
    d = write(tmp_path / "s", source="EC2", user_data="x")
    outside = tmp_path / "host-file"
    outside.write_text("host")
    outside.chmod(0o644)
    (d / "vendor-data").symlink_to(outside)
    seed.tighten_modes(str(d))
    assert outside.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("target", ["", "user-data", "source"])
def test_a_seed_writable_by_others_is_refused(tmp_path, target):
    d = write(tmp_path / "s", source="EC2", user_data="x")
    os.chmod(d / target if target else d, 0o777 if not target else 0o666)
    with pytest.raises(seed.SeedError, match=r"writable by others"):
        seed.read_seed(str(d))


def test_a_seed_owned_by_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file away")
    d = write(tmp_path / "s", source="EC2", user_data="x")
    os.chown(d / "user-data", 4242, 4242)
    with pytest.raises(seed.SeedError, match=r"owned by uid 4242"):
        seed.read_seed(str(d))


def test_reading_changes_nothing(tmp_path):
    d = write(tmp_path / "s", source="EC2", user_data="x", meta_data="{}")
    before = {p.name: (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns) for p in d.iterdir()}
    seed.read_seed(str(d))
    after = {p.name: (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns) for p in d.iterdir()}
    assert before == after


def test_instance_id_precedence(tmp_path):
    d = write(tmp_path / "s", source="EC2", user_data="x")
    s = seed.read_seed(str(d))
    digest_id = seed.instance_id(s, None)
    assert digest_id.startswith("cernvm-") and len(digest_id) == len("cernvm-") + 20
    assert seed.instance_id(s, "ABCD-1234") == "abcd-1234"
    for bogus in seed.BOGUS_UUIDS:
        assert seed.instance_id(s, bogus.upper()) == digest_id
    s.meta_data["instance-id"] = "i-42"
    assert seed.instance_id(s, "ABCD-1234") == "i-42"


def test_digest_changes_with_the_context_only(tmp_path):
    a = seed.read_seed(str(write(tmp_path / "a", source="EC2", user_data="x", ucontext="1")))
    b = seed.read_seed(str(write(tmp_path / "b", source="EC2", user_data="x", ucontext="2")))
    c = seed.read_seed(str(write(tmp_path / "c", source="EC2", user_data="y")))
    d = seed.read_seed(str(write(tmp_path / "d", source="GCE", user_data="x")))
    assert a.digest() == b.digest()
    assert len({a.digest(), c.digest(), d.digest()}) == 3
