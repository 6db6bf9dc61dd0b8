"""Recording and checking the µCernVM part: plain functions, no cloud-init."""

from __future__ import annotations

import json
import os
import stat

import pytest

from cloudinit_cernvm import ucernvm_record as rec

BLOCK = (
    "[ucernvm-begin]\n"
    "cvmfs_branch=cernvm-prod.cern.ch\n"
    "resize_rootfs=ON\n"
    "cvmfs_proxy=http://squid:3128\n"
    "cernvm_inject=SGVsbG8=Cg==\n"
    "[ucernvm-end]\n"
)


@pytest.mark.parametrize(("key", "secret"), [
    ("_UCONTEXT_CERNVM_INJECT", True), ("cernvm_inject", True),
    ("_UCONTEXT_CVM_CLUSTER_PIN", True), ("_UCONTEXT_ADMIN_PASSWORD", True),
    ("_UCONTEXT_API_TOKEN", True), ("_UCONTEXT_SSH_KEY", True),
    ("_UCONTEXT_CVMFS_BRANCH", False), ("_UCONTEXT_CVMFS_HTTP_PROXY", False),
    ("_UCONTEXT_USE_BOOTHD", False), ("_UCONTEXT_CVM_CLUSTER_PINNED", False),
])
def test_secret_looking_keys(key, secret):
    assert rec.is_secret(key) is secret
    assert (rec.shown(key, "v") == "(hidden)") is secret


def test_settings_follow_ucernvm_rules_and_unknown_keys_are_named():
    result = rec.check(BLOCK, None, name="part-003")
    assert result.settings == {
        "_UCONTEXT_CVMFS_BRANCH": "cernvm-prod.cern.ch",
        "_UCONTEXT_RESIZE_ROOTFS": "1",
        "_UCONTEXT_CVMFS_PROXY": "http://squid:3128",
        "_UCONTEXT_CERNVM_INJECT": "SGVsbG8=Cg==",
    }
    assert result.unknown == ["cvmfs_proxy"] and not result.compared
    assert result.warnings == [
        "part-003 line 4: unknown µCernVM key 'cvmfs_proxy' (did you mean 'cvmfs_http_proxy'?)"]


def test_differences_with_the_seed_hide_secret_values():
    seed = {"_UCONTEXT_CVMFS_BRANCH": "cernvm-testing.cern.ch",
            "_UCONTEXT_RESIZE_ROOTFS": "1",
            "_UCONTEXT_CERNVM_INJECT": "b3RoZXI=",
            "_UCONTEXT_USE_BOOTHD": "0"}
    result = rec.check(BLOCK, seed, name="p")
    assert result.compared
    assert [d["key"] for d in result.differences] == [
        "_UCONTEXT_CERNVM_INJECT", "_UCONTEXT_CVMFS_BRANCH",
        "_UCONTEXT_CVMFS_PROXY", "_UCONTEXT_USE_BOOTHD"]
    text = "\n".join(result.warnings)
    assert "SGVsbG8" not in text and "b3RoZXI" not in text
    assert ("p: _UCONTEXT_CVMFS_BRANCH is 'cernvm-prod.cern.ch' in the user-data but"
            " 'cernvm-testing.cern.ch' in the seed's ucontext") in text
    assert "_UCONTEXT_CERNVM_INJECT is (hidden) in the user-data but (hidden)" in text
    assert "_UCONTEXT_USE_BOOTHD='0' is in the seed's ucontext but not in the user-data" in text


def test_same_settings_give_no_warning():
    block = "[ucernvm-begin]\ncvmfs_branch=x\nuse_boothd=off\n[ucernvm-end]\n"
    result = rec.check(block, {"_UCONTEXT_CVMFS_BRANCH": "x", "_UCONTEXT_USE_BOOTHD": "0"})
    assert result.warnings == [] and result.differences == []


def test_a_part_without_block_is_one_warning():
    result = rec.check("cvmfs_branch=x\n", {}, name="p")
    assert result.settings == {}
    assert result.warnings == ["p: no '[ucernvm-begin]' line; µCernVM ignores this part"]


def test_records_are_private(tmp_path):
    result = rec.check(BLOCK, {"_UCONTEXT_CVMFS_BRANCH": "cernvm-prod.cern.ch"})
    json_path, env_path = rec.write(str(tmp_path / "cernvm"), result, "part-003")
    assert stat.S_IMODE(os.stat(tmp_path / "cernvm").st_mode) == 0o700
    for path in (json_path, env_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    record = json.loads(open(json_path).read())
    assert record["secret_keys"] == ["_UCONTEXT_CERNVM_INJECT"]
    assert record["settings"]["_UCONTEXT_RESIZE_ROOTFS"] == "1"
    assert record["unknown_keys"] == ["cvmfs_proxy"] and record["compared_with_ucontext"]
    assert open(env_path).read() == (
        "_UCONTEXT_CVMFS_BRANCH=cernvm-prod.cern.ch\n_UCONTEXT_RESIZE_ROOTFS=1\n"
        "_UCONTEXT_CVMFS_PROXY=http://squid:3128\n_UCONTEXT_CERNVM_INJECT=SGVsbG8=Cg==\n")


def test_differences_hide_credentials_inside_values_and_newer_secret_keys():
    block = ("[ucernvm-begin]\n"
             "cvmfs_http_proxy=http://user:pw1@squid:3128\n"
             "cvm_cluster_pin_2=4321\n"
             "apikey=k-abc\n"
             "access_key_id=AKIAEXAMPLE\n"
             "pwd=hunter2\n"
             "cvmfs_pac_urls=http://wpad/wpad.dat?access_token=tok9\n"
             "[ucernvm-end]\n")
    seed = {"_UCONTEXT_CVMFS_HTTP_PROXY": "http://user:pw2@squid:3128",
            "_UCONTEXT_CVM_CLUSTER_PIN_2": "1234",
            "_UCONTEXT_APIKEY": "k-def",
            "_UCONTEXT_ACCESS_KEY_ID": "AKIAOTHER",
            "_UCONTEXT_PWD": "other",
            "_UCONTEXT_CVMFS_PAC_URLS": "http://wpad/wpad.dat?access_token=tok8"}
    result = rec.check(block, seed, name="p")
    assert len(result.differences) == 6
    text = "\n".join(result.warnings)
    for secret in ("pw1", "pw2", "4321", "1234", "k-abc", "k-def", "AKIA", "hunter2",
                   "other", "tok9", "tok8"):
        assert secret not in text, (secret, text)
    # what is not secret stays readable, so that the warning can be acted upon
    assert "'http://(hidden)@squid:3128'" in text
    assert "wpad.dat?access_token=(hidden)" in text
    assert sorted(k for k in result.settings if rec.is_secret(k)) == [
        "_UCONTEXT_ACCESS_KEY_ID", "_UCONTEXT_APIKEY", "_UCONTEXT_CVM_CLUSTER_PIN_2",
        "_UCONTEXT_PWD"]
