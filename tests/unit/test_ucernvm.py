"""µCernVM's reading of its block, reproduced exactly."""

from __future__ import annotations

from cloudinit_cernvm import ucernvm


def test_block_settings_are_prefixed_upper_cased_and_switches_mapped():
    text = (
        "[cernvm]\nx = 1\n[ucernvm-begin]\n"
        "cvmfs_branch=cernvm-prod.cern.ch\nresize_rootfs=Off\nuse_boothd=YES\n"
        "useglideinWMS=true\ncvm_cluster_master=no\ncvmfs_tag=On-demand\n"
        "[ucernvm-end]\n"
    )
    assert ucernvm.parse_block(text) == {
        "_UCONTEXT_CVMFS_BRANCH": "cernvm-prod.cern.ch",
        "_UCONTEXT_RESIZE_ROOTFS": "0",
        "_UCONTEXT_USE_BOOTHD": "1",
        "_UCONTEXT_USEGLIDEINWMS": "1",
        "_UCONTEXT_CVM_CLUSTER_MASTER": "0",
        "_UCONTEXT_CVMFS_TAG": "On-demand",
    }


def test_split_at_first_equals_keeps_base64_padding():
    text = "[ucernvm-begin]\ncernvm_inject=H4sIAAAA==\n[ucernvm-end]\n"
    assert ucernvm.parse_block(text) == {"_UCONTEXT_CERNVM_INJECT": "H4sIAAAA=="}


def test_only_the_first_block_counts():
    text = (
        "[ucernvm-begin]\ncvmfs_tag=a\n[ucernvm-end]\n[ucernvm-begin]\ncvmfs_tag=b\n[ucernvm-end]\n"
    )
    assert ucernvm.parse_block(text) == {"_UCONTEXT_CVMFS_TAG": "a"}


def test_markers_must_be_exact():
    assert ucernvm.parse_block("[ucernvm-begin] \ncvmfs_tag=a\n[ucernvm-end]\n") == {}
    assert ucernvm.parse_block("[ucernvm-begin]\r\ncvmfs_tag=a\r\n[ucernvm-end]\r\n") == {}


def test_end_marker_before_the_block_stops_reading():
    assert ucernvm.parse_block("[ucernvm-end]\n[ucernvm-begin]\ncvmfs_tag=a\n[ucernvm-end]\n") == {}


def test_unterminated_last_line_and_lines_without_equals_are_ignored():
    assert ucernvm.parse_block("[ucernvm-begin]\nnothing here\ncvmfs_tag=a") == {}
    assert ucernvm.parse_block("[ucernvm-begin]\ncvmfs_tag=a\n") == {"_UCONTEXT_CVMFS_TAG": "a"}


def test_blanks_are_kept_in_keys_and_values():
    assert ucernvm.parse_block("[ucernvm-begin]\ncvmfs_tag = a\n[ucernvm-end]\n") == {
        "_UCONTEXT_CVMFS_TAG ": " a"
    }


def test_ucontext_file_round_trip():
    settings = {"_UCONTEXT_CVMFS_TAG": "a=b", "_UCONTEXT_RESIZE_ROOTFS": "1"}
    text = ucernvm.format_ucontext(settings)
    assert text == "_UCONTEXT_CVMFS_TAG=a=b\n_UCONTEXT_RESIZE_ROOTFS=1\n"
    assert ucernvm.parse_ucontext("# comment\n\nOTHER=1\n" + text) == settings


def test_known_keys_ignore_case_and_suggestions_find_the_intended_key():
    assert ucernvm.is_known("USEGLIDEINWMS")
    assert ucernvm.is_known("cvmfs_http_proxy")
    assert not ucernvm.is_known("cvmfs_proxy")
    assert ucernvm.suggest("cvmfs_proxy") == "cvmfs_http_proxy"
    assert ucernvm.suggest("resize_rootf") == "resize_rootfs"
    assert ucernvm.suggest("completely_different") is None


def test_values_are_read_as_sourcing_gives_them():
    """The stage's quoted values and an older µCernVM's bare ones alike."""
    text = ("_UCONTEXT_A='x y; z'\n_UCONTEXT_B='it'\\''s'\n"
            '_UCONTEXT_C="http://a:3128;DIRECT"\n_UCONTEXT_D=plain\n'
            "_UCONTEXT_E=a b\n_UCONTEXT_F=\"$HOME\"\n")
    assert ucernvm.parse_ucontext(text) == {
        "_UCONTEXT_A": "x y; z", "_UCONTEXT_B": "it's", "_UCONTEXT_C": "http://a:3128;DIRECT",
        "_UCONTEXT_D": "plain", "_UCONTEXT_E": "a b", "_UCONTEXT_F": '"$HOME"',
    }


def test_a_value_in_one_pair_of_quotes_is_read_without_them():
    text = ('[ucernvm-begin]\ncvmfs_http_proxy="http://a:3128;DIRECT"\nx=\'q\'\n'
            'y="a"b"\n[ucernvm-end]\n')
    assert ucernvm.parse_block(text) == {"_UCONTEXT_CVMFS_HTTP_PROXY": "http://a:3128;DIRECT",
                                         "_UCONTEXT_X": "q", "_UCONTEXT_Y": '"a"b"'}


def test_format_ucontext_writes_words_sh_reads_back_and_runs_nothing(tmp_path):
    import shutil
    import subprocess

    values = ["$(touch ran)", "`touch ran`", "x; touch ran", "it's", "", "~root", "a\\b"]
    settings = {f"_UCONTEXT_V{i}": v for i, v in enumerate(values)}
    text = ucernvm.format_ucontext(settings)
    assert ucernvm.parse_ucontext(text) == settings
    sh = shutil.which("busybox") or "sh"
    script = text + "".join(f'printf "%s\\0" "$_UCONTEXT_V{i}"\n' for i in range(len(values)))
    out = subprocess.run([sh, "sh", "-c", script] if sh.endswith("busybox") else [sh, "-c", script],
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.split("\0")[:-1] == values
    assert not (tmp_path / "ran").exists()
