"""What µCernVM's later stages and the OS side read from the stage, under
busybox: ucontext sourced by sh (values, nothing run), glideinWMS user-data,
the extra context of the disks, Azure's UDF provisioning disk."""

from __future__ import annotations

import base64
import subprocess
import tempfile
from pathlib import Path

import pytest

from cloudinit_cernvm import ucernvm

from .conftest import Machine, run_fetch, seed_files

VMWARE = {"sys_vendor": "VMware, Inc."}
MARK = "/tmp/cernvm-ucontext-ran"    # created only if sourcing ran a command


def vsphere(user_data: bytes, **more: dict[str, bytes]) -> Machine:
    return Machine(dmi=VMWARE, media={"OVF": {"user-data.txt": user_data}, **more})


def source(bbpath: Path, ucontext: Path, show: str = "set") -> str:
    """Source UCONTEXT with busybox sh; what `show` prints then."""
    done = subprocess.run([str(bbpath / "sh"), "-c", f'. "{ucontext}" && {show}'],
                          env={"PATH": str(bbpath)}, capture_output=True, text=True,
                          timeout=10, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def sourced(bbpath: Path, ucontext: Path) -> dict[str, str]:
    """The _UCONTEXT_ variables that sourcing UCONTEXT sets, NUL-separated print."""
    names = "$(set | sed -n 's/^\\(_UCONTEXT_[A-Z0-9_]*\\)=.*/\\1/p')"
    out = source(bbpath, ucontext, f"for v in {names};"
                 " do eval \"printf '%s=%s\\0' \\\"\\$v\\\" \\\"\\${$v}\\\"\"; done")
    return dict(item.split("=", 1) for item in out.split("\0") if item)


# --- item 2: ucontext sourced by sh ------------------------------------------------

HOSTILE = {
    "subst": f"$(touch {MARK})",
    "backticks": f"`touch {MARK}`",
    "blank": f"x; touch {MARK}",
    "semicolon": "a;b",
    "quotes": "it's \"quoted\"",
    "glob": "*",
    "tilde": "~root",
    "dollar": "$HOME",
    "trailing_blank": "v ",
}


def test_sourcing_ucontext_yields_each_value_and_runs_nothing(fetch, bbpath: Path) -> None:
    Path(MARK).unlink(missing_ok=True)
    block = "".join(f"{k}={v}\n" for k, v in HOSTILE.items())
    run = fetch(vsphere(f"[ucernvm-begin]\n{block}[ucernvm-end]\n".encode()))
    assert run.rc == 0, run.stderr
    got = sourced(bbpath, run.seed / "ucontext")
    assert got == {"_UCONTEXT_" + k.upper(): v for k, v in HOSTILE.items()}
    assert not Path(MARK).exists()


def test_a_value_wholly_in_one_pair_of_quotes_arrives_without_them(fetch, bbpath: Path) -> None:
    ud = (b"[ucernvm-begin]\n"
          b'cvmfs_http_proxy="http://a.example.org:3128;http://b.example.org:3128;DIRECT"\n'
          b"cvmfs_pac_urls='http://wpad.example.org/wpad.dat'\n"
          b'cvmfs_server="s1"x"\n'
          b"[ucernvm-end]\n")
    run = fetch(vsphere(ud))
    assert run.rc == 0, run.stderr
    got = sourced(bbpath, run.seed / "ucontext")
    assert got["_UCONTEXT_CVMFS_HTTP_PROXY"] == \
        "http://a.example.org:3128;http://b.example.org:3128;DIRECT"
    assert got["_UCONTEXT_CVMFS_PAC_URLS"] == "http://wpad.example.org/wpad.dat"
    assert got["_UCONTEXT_CVMFS_SERVER"] == '"s1"x"'    # not one pair: literally


@pytest.mark.parametrize("written", ['"{}"', "{}"], ids=["quoted", "bare"])
def test_the_os_side_grep_still_gives_the_proxy(fetch, bbpath: Path, tmp_path: Path,
                                               written: str) -> None:
    proxy = "http://a.example.org:3128|http://b.example.org:3128;DIRECT"
    value = written.format(proxy)
    run = fetch(vsphere(f"[ucernvm-begin]\ncvmfs_http_proxy={value}\n[ucernvm-end]\n".encode()))
    assert run.rc == 0, run.stderr
    # cernvm-config: grep ^_UCONTEXT_CVMFS_HTTP_PROXY= ucontext | sed s/^_UCONTEXT_//
    site = tmp_path / "site.conf"
    script = (f"grep ^_UCONTEXT_CVMFS_HTTP_PROXY= {run.seed}/ucontext | sed s/^_UCONTEXT_// "
              f"> {site}; . {site}; printf %s \"$CVMFS_HTTP_PROXY\"")
    done = subprocess.run([str(bbpath / "sh"), "-c", script], env={"PATH": str(bbpath)},
                          capture_output=True, text=True, timeout=10, check=False)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", proxy)


# what parse_user_data gives, sourced, on text where that is well defined
WELL_DEFINED = [
    b"[ucernvm-begin]\nresize_rootfs=Off\ncvmfs_branch=cernvm-prod.cern.ch\n[ucernvm-end]\n",
    b"x=1\n[ucernvm-begin]\ncernvm_inject=aGVsbG8=\nnoequals\nUSE_BOOTHD=yes\n[ucernvm-end]\n",
    b"[ucernvm-begin]\ncvmfs_http_proxy=\"http://a:3128;DIRECT\"\n[ucernvm-end]\ny=2\n",
    b"[ucernvm-end]\n[ucernvm-begin]\nnever=1\n[ucernvm-end]\n",
    b"[ucernvm-begin]\ncvmfs_tag=v1\n[ucernvm-begin]\ncvmfs_tag=v2\n",
    b"[ucernvm-begin]\ncvmfs_tag=last-line-has-no-line-end",
    b"[ucernvm-begin]\nempty=\nflag=TRUE\nother=False\n[ucernvm-end]",
]


@pytest.mark.parametrize("ud", WELL_DEFINED, ids=range(len(WELL_DEFINED)))
def test_ucontext_equals_parse_user_data_where_well_defined(fetch, bbpath: Path,
                                                           ud: bytes) -> None:
    run = fetch(vsphere(ud))
    assert run.rc == 0, run.stderr
    want = ucernvm.parse_block(ud.decode())
    path = run.seed / "ucontext"
    got = sourced(bbpath, path) if path.exists() else {}
    assert got == want
    # the Python side reads the file back as sourcing gives it
    assert ucernvm.parse_ucontext(path.read_text() if path.exists() else "") == want


# --- item 3: glideinWMS ----------------------------------------------------------------

PROXY_ESC = ("http.colon,//squid1.dot,example.dot,org.colon,3128.pipe,"
             "http.colon,//squid.minus,2.dot,example.dot,org.colon,3128.semicolon,DIRECT")
PROXY = "http://squid1.example.org:3128|http://squid-2.example.org:3128;DIRECT"
PAC_ESC = "http.colon,//wpad.dot,example.dot,org/wpad.dot,dat"
PAC = "http://wpad.example.org/wpad.dat"


def glidein(args: str, tail: bytes = b"", useglidein: str | None = None) -> bytes:
    ini = ("[glidein_startup]\n"
           f"args = -v std -name gfactory_instance -entry CMS_T2_XX {args} -slots_layout fixed\n"
           "webbase = http://factory.example.org/factory/stage\n"
           "proxy_file_name = pilot_proxy\n")
    line = base64.b64encode(ini.encode()) + b"#### -cluster 4242 -subcluster 0####" + tail
    return line


def test_glideinwms_user_data_gives_the_cvmfs_proxy(fetch, bbpath: Path) -> None:
    ud = glidein(f"-param_CERNVM_CMS_PROXY {PROXY_ESC} -param_CERNVM_CMS_PAC_URLS {PAC_ESC}")
    run = fetch(vsphere(ud))
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["user-data"] == ud
    got = sourced(bbpath, run.seed / "ucontext")
    assert got == {"_UCONTEXT_CVMFS_HTTP_PROXY": PROXY, "_UCONTEXT_CVMFS_PAC_URLS": PAC}
    assert "glideinWMS user-data" in run.stderr
    # one line only (a line end after it is fine), with the cluster mark
    proxy_only = glidein(f"-param_CERNVM_CMS_PROXY {PROXY_ESC}")
    run = fetch(vsphere(proxy_only + b"\n"))
    assert sourced(bbpath, run.seed / "ucontext") == {"_UCONTEXT_CVMFS_HTTP_PROXY": PROXY}
    for not_glidein in (proxy_only + b"\nsecond line\n",
                        proxy_only.replace(b"-subcluster", b"-sub"),
                        glidein("-param_OTHER x")):
        run = fetch(vsphere(not_glidein))
        assert run.rc == 0 and not (run.seed / "ucontext").exists(), not_glidein


def test_glideinwms_turned_off_by_useglideinwms_0() -> None:
    """A one-line user-data cannot hold a µCernVM block; the setting comes
    from an earlier ucontext (the stage's glideinwms reads the file it is
    given), so the check is on the library itself."""
    lib = Path(__file__).resolve().parents[2] / "cloudinit_cernvm" / "microboot" / "lib"
    ud = glidein(f"-param_CERNVM_CMS_PROXY {PROXY_ESC}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "ud").write_bytes(ud)
        out = {}
        for setting in ("_UCONTEXT_USEGLIDEINWMS=0\n", "_UCONTEXT_USEGLIDEINWMS=1\n"):
            (work / "uc").write_text(setting)
            script = (f'. {lib}/common.sh; . {lib}/formats.sh; . {lib}/glideinwms.sh; '
                      f'WORK={work}; glideinwms {work}/ud {work}/uc; echo rc=$?; cat {work}/uc')
            done = subprocess.run(["busybox", "sh", "-c", script], capture_output=True,
                                  text=True, timeout=10, check=False)
            out[setting] = (done.stdout, done.stderr)
    off, on = out.values()
    assert off[0] == "rc=1\n_UCONTEXT_USEGLIDEINWMS=0\n" and "turned off" in off[1]
    assert on[0].startswith("rc=0\n_UCONTEXT_USEGLIDEINWMS=1\n_UCONTEXT_CVMFS_HTTP_PROXY=")


# --- item 4: the extra context, in the same pass ------------------------------------------

def test_extra_context_of_the_disks_goes_into_the_seed(fetch, bbpath: Path,
                                                     tmp_path: Path) -> None:
    extra1 = b"[ucernvm-begin]\ncvmfs_tag=extra; x\n[ucernvm-end]\n"
    extra2 = b"[amiconfig]\nplugins=cernvm\n"
    m = vsphere(b"#cloud-config\n{}\n",
                BOOT={"cernvm/extra-user-data": extra1, "cernvm/pickup.tar.gz": b"\x1f\x8btar"},
                DATA={"cernvm/extra-user-data": extra2})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["extra-user-data"] == extra1 + extra2    # every disk's, in list order
    assert files["pickup.tar.gz"] == b"\x1f\x8btar"
    assert sourced(bbpath, run.seed / "extra-ucontext") == {"_UCONTEXT_CVMFS_TAG": "extra; x"}
    assert "ucontext" not in files
    # disks without it: no extra files
    (tmp_path / "again").mkdir()
    run = run_fetch(bbpath, tmp_path / "again", vsphere(b"#cloud-config\n{}\n", DATA={"x": b""}))
    assert sorted(seed_files(run.seed)) == ["source", "user-data"]


def test_extra_context_links_out_of_the_disk_are_not_read(fetch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"root password\n")
    m = vsphere(b"#cloud-config\n{}\n", BOOT={"cernvm/": b""})
    _root, media = m.build(tmp_path)
    (media / "BOOT" / "cernvm" / "extra-user-data").symlink_to(secret)
    run = fetch(m)
    assert run.rc == 0, run.stderr
    assert "extra-user-data" not in seed_files(run.seed)
    assert "symlink" in run.stderr


# --- item 6: Azure's UDF provisioning disk --------------------------------------------------

TAG = "E6DA6616-8EC4-48E0-BE93-58CE6ACE3CFB.tag"


def test_azure_udf_disk_custom_data_bin_and_azure_iso(fetch, tmp_path: Path) -> None:
    ud = b"[ucernvm-begin]\ncvmfs_branch=prod\n[ucernvm-end]\n"
    m = Machine(media={"UDF-DISK": {TAG: b"", "CustomData.bin": ud}})
    _root, media = m.build(tmp_path)
    (media / "UDF-DISK.img").write_bytes(b"UDF image bytes\0" * 64)
    run = fetch(m)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["source"] == b"Azure\n" and files["user-data"] == ud
    assert files["ucontext"] == b"_UCONTEXT_CVMFS_BRANCH=prod\n"
    assert files["azure.iso"] == b"UDF image bytes\0" * 64
    assert TAG in run.stderr


def test_azure_udf_disk_without_custom_data_is_empty_user_data(fetch) -> None:
    run = fetch(Machine(media={"UDF-DISK": {TAG: b""}}))
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["source"] == b"Azure\n" and files["user-data"] == b""
    assert "azure.iso" not in files
