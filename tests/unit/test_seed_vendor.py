"""The seed's vendor-data files read by ``seed.read_seed``: kept as given,
parsed where they are OpenStack's JSON, one problem each where not."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudinit_cernvm import seed as seedlib


def make(tmp_path: Path, **files: bytes) -> str:
    d = tmp_path / "seed"
    d.mkdir(mode=0o700)
    for name, data in {"source": b"OpenStack\n", "user-data": b"", **files}.items():
        f = d / name.replace("_", "-")
        f.write_bytes(data)
        f.chmod(0o600)
    return str(d)


def test_both_files_raw_and_parsed(tmp_path: Path) -> None:
    s = seedlib.read_seed(make(tmp_path, vendor_data=b'{"cloud-init": "#cloud-config\\n"}',
                               vendor_data2=b'["a", "b"]'))
    assert s.vendor_raw == {"vendor-data": b'{"cloud-init": "#cloud-config\\n"}',
                            "vendor-data2": b'["a", "b"]'}
    assert s.vendor_data == {"vendor-data": {"cloud-init": "#cloud-config\n"},
                             "vendor-data2": ["a", "b"]}
    assert s.problems == []


def test_none_is_none(tmp_path: Path) -> None:
    s = seedlib.read_seed(make(tmp_path))
    assert s.vendor_raw == {} and s.vendor_data == {} and s.problems == []


def test_a_blank_file_is_no_vendor_data(tmp_path: Path) -> None:
    s = seedlib.read_seed(make(tmp_path, vendor_data=b"\n"))
    assert s.vendor_data == {} and s.problems == []


@pytest.mark.parametrize(("data", "why"), [
    (b'{"cloud-init": ', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"42", "not a JSON object, list or string"),
    (b"null", "not a JSON object, list or string"),
    (b"[" * 100_000, "nested too deep"),
])
def test_bad_vendor_data_is_one_problem_and_kept(tmp_path: Path, data: bytes, why: str) -> None:
    path = make(tmp_path, vendor_data=data, vendor_data2=b'{"x": 1}')
    s = seedlib.read_seed(path)
    assert s.vendor_raw["vendor-data"] == data and "vendor-data" not in s.vendor_data
    assert s.vendor_data == {"vendor-data2": {"x": 1}}
    assert len(s.problems) == 1, s.problems
    assert s.problems[0].startswith(f"{path}/vendor-data: {why}")
    assert s.problems[0].endswith("; not used (the file is kept)")
    assert s.user_data == b"" and s.provider == "OpenStack"  # the rest of the seed is used


def test_an_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    path = make(tmp_path)
    Path(path, "vendor-data").symlink_to("/etc/passwd")
    s = seedlib.read_seed(path)
    assert s.vendor_data == {} and len(s.problems) == 1
    assert "no vendor-data from it" in s.problems[0]
