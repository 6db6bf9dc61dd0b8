"""amiconfig's own reading of its user-data (rules of cernvm/amiconfig's userdata.py)."""

from __future__ import annotations

import pytest

from cloudinit_cernvm import amiconfig_ini


def options(text: str) -> dict[str, dict[str, str]]:
    reading = amiconfig_ini.read(text)
    return {name: {k: o.value for k, o in opts.items()} for name, opts in reading.sections.items()}


def test_everything_before_the_first_header_is_dropped():
    text = "#!/bin/sh\nusers = a:b:c\necho x=1\nexit\n[cernvm]\nshell = /bin/sh\n"
    reading = amiconfig_ini.read(text)
    assert options(text) == {"cernvm": {"shell": "/bin/sh"}}
    assert reading.first_header == 5 and reading.dropped == []


def test_every_line_after_the_first_header_that_looks_like_one_is_taken():
    # the µCernVM block and YAML become sections and options too
    text = (
        "[cernvm]\nshell = /bin/sh\n[ucernvm-begin]\ncvmfs_tag=x\n[ucernvm-end]\n"
        "#cloud-config\npackages: [htop]\n"
    )
    assert options(text) == {
        "cernvm": {"shell": "/bin/sh"},
        "ucernvm-begin": {"cvmfs_tag": "x"},
        "ucernvm-end": {"packages": "[htop]"},
    }


def test_a_header_is_any_bracket_at_column_zero():
    assert list(options("[ -f /x ] && echo y=1\n[cernvm] # note\nk=v\n")) == [" -f /x ", "cernvm"]


@pytest.mark.parametrize(
    ("line", "taken"),
    [
        ("Name = Value", {"name": "Value"}),  # names lower-cased, values kept
        ("key: value", {"key": "value"}),
        ("key=a ;comment", {"key": "a"}),  # ' ;' cuts
        ("key=a;b ;c", {"key": "a;b ;c"}),  # only the first ';' counts
        ('key=""', {"key": ""}),
        ("key = spaced   \r", {"key": "spaced"}),  # CR is harmless
        ("key=a # not a comment", {"key": "a # not a comment"}),
        ("  indented = dropped", {}),
        ("# comment = no", {}),
        ("; comment = no", {}),
        ("rem = a remark", {}),
        ("remote = kept", {"remote": "kept"}),
        ("no equals sign", {}),
    ],
)
def test_option_lines(line, taken):
    assert options(f"[s]\n{line}\n")["s"] == taken


def test_dropped_lines_after_a_header_are_listed_with_why():
    reading = amiconfig_ini.read("[s]\n  indented = x\nno equals\n# comment\n\n")
    assert [(d.line, d.reason) for d in reading.dropped] == [
        (2, "indented"),
        (3, "not 'name = value'"),
    ]


def test_repeated_sections_merge_and_the_later_option_wins():
    reading = amiconfig_ini.read("[cernvm]\nshell = a\n[condor]\nx = 1\n[cernvm]\nShell = b\n")
    assert options("[cernvm]\nshell = a\n[condor]\nx = 1\n[cernvm]\nShell = b\n") == {
        "cernvm": {"shell": "b"},
        "condor": {"x": "1"},
    }
    ((section, old, new),) = reading.overridden
    assert (section, old.line, new.line, new.written) == ("cernvm", 2, 6, "Shell")


def test_plugins_are_defaults_plus_plugins_minus_disabled():
    reading = amiconfig_ini.read(
        "[amiconfig]\nplugins = CernVM condor cernvm_appliance,x\ndisabled_plugins = condor\n"
    )
    assert reading.enabled_plugins(("rootsshkeys",)) == ["rootsshkeys", "cernvm",
                                                         "cernvm_appliance,x"]


def test_a_section_in_another_case_is_the_lookup_bug():
    reading = amiconfig_ini.read("[AMICONFIG]\nplugins = cernvm\n")
    with pytest.raises(KeyError):
        reading.enabled_plugins()
    assert reading.crashing_sections() == [(1, "AMICONFIG")]
    both = amiconfig_ini.read("[Amiconfig]\nplugins = a\n[amiconfig]\nplugins = b\n")
    assert both.enabled_plugins() == ["b"] and both.crashing_sections() == []


def test_joined_parts_each_end_with_a_newline():
    assert amiconfig_ini.join(["[a]\nx=1", "", "y=2\n"]) == "[a]\nx=1\ny=2\n"
    assert options(amiconfig_ini.join(["[a]\nx=1", "y=2\n"])) == {"a": {"x": "1", "y": "2"}}


def test_non_ascii_blanks_are_no_blanks_for_amiconfig():
    # Python 2 byte strings: only ASCII blanks are stripped
    assert options("[s]\nk = v\u00a0\n")["s"] == {"k": "v\u00a0"}
