"""Whole boots of µCernVM's own cases (#15): glideinWMS user-data and the
extra context, each on a CD made by this project's ISO writer, read by the
microboot stage in the VM's initramfs (real kernel, real iso9660 mount)."""

from __future__ import annotations

from pathlib import Path

from cloudinit_cernvm.context_image import iso9660
from tests.microboot.test_ucernvm_compat import PAC, PAC_ESC, PROXY, PROXY_ESC, glidein

EXTRA = b"[ucernvm-begin]\ncvmfs_tag=extra tag\n[ucernvm-end]\n[amiconfig]\nplugins=cernvm\n"
PICKUP = b"\x1f\x8b\x08\x00pickup"


def cd(tmp_path: Path, files: dict[str, bytes], label: str = "CDROM") -> Path:
    out = tmp_path / "cd.iso"
    iso9660.write_image(files, label, str(out), force=True)
    return out


def booted(vm_boot, iso: Path):
    res = vm_boot(cdrom=iso, timeout=150)
    assert res.powered_off and not res.timed_out, res.serial[-3000:]
    assert res.exit_status == 0, res.fetch_stderr
    assert res.seed is not None
    assert res.seed_modes["."] == 0o700
    assert {m for n, m in res.seed_modes.items() if n != "."} == {0o600}
    return res


def test_glideinwms_user_data_on_a_cd(vm_boot, tmp_path: Path) -> None:
    ud = glidein(f"-param_CERNVM_CMS_PROXY {PROXY_ESC} -param_CERNVM_CMS_PAC_URLS {PAC_ESC}")
    res = booted(vm_boot, cd(tmp_path, {"user-data.txt": ud}))
    assert res.seed["source"] == b"vSphere\n" and res.seed["user-data"] == ud
    assert res.seed["ucontext"] == (f"_UCONTEXT_CVMFS_HTTP_PROXY='{PROXY}'\n"
                                    f"_UCONTEXT_CVMFS_PAC_URLS={PAC}\n").encode()
    assert "glideinWMS user-data" in res.fetch_stderr


def test_extra_context_on_the_cd_in_the_same_pass(vm_boot, tmp_path: Path) -> None:
    ud = b"#cloud-config\n{}\n"
    iso = cd(tmp_path, {"user-data.txt": ud, "cernvm/extra-user-data": EXTRA,
                        "cernvm/pickup.tar.gz": PICKUP})
    res = booted(vm_boot, iso)
    assert sorted(res.seed) == ["extra-ucontext", "extra-user-data", "pickup.tar.gz",
                                "source", "user-data"]
    assert res.seed["extra-user-data"] == EXTRA and res.seed["pickup.tar.gz"] == PICKUP
    assert res.seed["extra-ucontext"] == b"_UCONTEXT_CVMFS_TAG='extra tag'\n"
    assert "cannot mount" not in res.fetch_stderr
