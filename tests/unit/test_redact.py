"""The one set of redaction rules: which keys are secret, what is hidden in values."""

from __future__ import annotations

import pytest

from cloudinit_cernvm import redact

SECRET_KEYS = [
    "password", "passwd", "pwd", "pass", "PASSPHRASE", "root_password", "rootpassword",
    "secret", "client_secret", "token", "access_token", "authtoken", "apikey", "api_key",
    "apiKey", "access_key_id", "AWS_SECRET_ACCESS_KEY", "accessKeyId", "credential",
    "credentials", "cvm_cluster_pin", "cvm_cluster_pin_2", "CVM_CLUSTER_PIN2",
    "_UCONTEXT_CVM_CLUSTER_PIN_2", "cernvm_inject", "_UCONTEXT_CERNVM_INJECT",
    "private", "private_key", "ssh_key", "sshkey", "key", "keys", "auth", "proxy_auth",
    "Authorization", "cookie", "X-Amz-Signature", "sig", "otp",
]
PLAIN_KEYS = [
    "keyboard", "keymap", "pinned", "cvmfs_http_proxy", "cvmfs_server", "cvmfs_branch",
    "resize_rootfs", "hostname", "organisations", "author", "passive", "compass",
    "cert", "rapcert", "spin", "instance-id", "region", "pkg",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys(key):
    assert redact.is_secret_key(key), key


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_keys_that_stay_readable(key):
    assert not redact.is_secret_key(key), key


REDACTED = [
    ("http://user:pw@proxy:3128", "http://(hidden)@proxy:3128"),
    ("cvmfs_http_proxy=http://user:pw@squid:3128;DIRECT",
     "cvmfs_http_proxy=http://(hidden)@squid:3128;DIRECT"),
    ("https://ghp_token123@github.com/x.git", "https://(hidden)@github.com/x.git"),
    ("https://h/x?access_token=abc123&page=2", "https://h/x?access_token=(hidden)&page=2"),
    ("https://h/x?page=2&X-Amz-Signature=deadbeef", "https://h/x?page=2&X-Amz-Signature=(hidden)"),
    ("--password=hunter2", "--password=(hidden)"),
    ("run --token abc.def --verbose", "run --token (hidden) --verbose"),
    ("--ldap-passwd 's3 cret'", "--ldap-passwd (hidden)"),
    ("password = hunter2", "password = (hidden)"),
    ("cvm_cluster_pin_2=1234", "cvm_cluster_pin_2=(hidden)"),
    ("export API_KEY=abcd; echo", "export API_KEY=(hidden); echo"),
    ('{"secret": "s3cret", "name": "x"}', '{"secret": (hidden), "name": "x"}'),
    ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: (hidden) (hidden)"),
    ("curl -H 'X: Basic dXNlcjpwdw=='", "curl -H 'X: Basic (hidden)'"),
    ("a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nb",
     "a\n(hidden)\nb"),
    ("the password=x here", "the password=(hidden) here"),
    ("plugin noip: password = hunter2", "plugin noip: password = (hidden)"),
    ("a\n-----BEGIN PRIVATE KEY-----\nMIIE cut short", "a\n(hidden)"),
]
KEPT = [
    "cvmfs_http_proxy=http://squid:3128",
    "http://squid.cern.ch:3128;DIRECT",
    "https://h/x?page=2&lang=en",
    "keyboard=us",
    "the key then names nothing; write key=value",
    "--verbose --level 3",
    "[amiconfig] plugins = cernvm",
    "section [cernvm] is no amiconfig plugin",
    "line 3: unknown µCernVM key 'cvmfs_proxy' (did you mean 'cvmfs_http_proxy'?)",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "",
]


@pytest.mark.parametrize(("text", "expected"), REDACTED)
def test_values_redacted(text, expected):
    assert redact.redact_text(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_values_kept(text):
    assert redact.redact_text(text) == text


def test_redacting_twice_changes_nothing_more():
    for _text, expected in REDACTED:
        assert redact.redact_text(expected) == expected


def test_shown_hides_secret_keys_and_credentials_in_values():
    assert redact.shown("cvm_cluster_pin_2", "1234") == "(hidden)"
    assert redact.shown("cvmfs_http_proxy", "http://u:p@h:3128") == "'http://(hidden)@h:3128'"
    assert redact.shown("cvmfs_http_proxy", "http://h:3128") == "'http://h:3128'"


@pytest.mark.parametrize("unit", ["a.", "?", "?a", "-----BEGIN RSA PRIVATE KEY-----", "a ",
                                  "http://", "x=", "--a ", "a:b@", "&a=b"])
def test_redaction_is_linear_on_hostile_text(unit):
    import time

    text = unit * (256 * 1024 // len(unit))  # amiconfig's output is read up to 1 MiB
    started = time.monotonic()
    redact.redact_text(text)
    assert time.monotonic() - started < 2.0
