"""Every provider has all its homes, and nothing names a provider that has none.

A provider is its record in ``cloudinit_cernvm/providers.py``, its rule
lines in ``microboot/rules``, its shell file in ``microboot/providers/``,
its fake under ``tests/fakes/`` if it has a service, a whole-VM case in
``tests/vm/providers.py`` and its row in README's provider table. Adding a
cloud and forgetting one of them fails here, naming what is missing.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from cloudinit_cernvm import detect, fallback, providers
from cloudinit_cernvm.context_image import formats
from tests.fakes.metadata import FAKES
from tests.vm.providers import CLOUDS

ROOT = Path(__file__).resolve().parents[2]
MICROBOOT = ROOT / "cloudinit_cernvm" / "microboot"
NAMES = providers.NAMES


def _readme_rows() -> set[str]:
    """The first words of the rows of README's provider table."""
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    table = text[text.index("What each provider gives"):]
    table = table[:table.index("\n\n", table.index("provider     user-data"))]
    return {m.group(1).rstrip(",") for m in re.finditer(r"^(\S+)\s", table, re.M)}


@pytest.mark.parametrize("name", NAMES)
def test_rules_recognise_it_and_name_it_on_the_command_line(name: str) -> None:
    rules = [r for r in detect.load_rules() if r.provider == name]
    assert rules, f"{name}: no line in microboot/rules"
    cmdline = [c for r in rules for c in r.conditions
               if c.kind == "cmdline" and "cernvm.source" in c.field.split(",")]
    assert any(c.pattern == name.lower() for c in cmdline), \
        f"{name}: no 'cernvm.source={name.lower()}' rule in microboot/rules"


@pytest.mark.parametrize("name", NAMES)
def test_its_shell_file_fetches(name: str) -> None:
    path = MICROBOOT / "providers" / providers.BY_NAME[name].shell_file
    assert path.is_file(), f"{name}: no {path.relative_to(ROOT)}"
    assert re.search(r"^provider_fetch\(\) \{", path.read_text(), re.M), \
        f"{path.relative_to(ROOT)}: defines no provider_fetch"


@pytest.mark.parametrize("name", [p.name for p in providers.PROVIDERS if p.service])
def test_a_provider_with_a_service_has_its_fake(name: str) -> None:
    fake = importlib.import_module(f"tests.fakes.{name.lower()}")
    served = name in FAKES or hasattr(fake, "SeedServer")
    assert served, f"tests/fakes/{name.lower()}.py: neither in metadata.FAKES nor a server"
    if name in FAKES:
        assert callable(fake.answer) and fake.DMI, f"tests/fakes/{name.lower()}.py: answer, DMI"


@pytest.mark.parametrize("name", NAMES)
def test_a_whole_vm_case_boots_it(name: str) -> None:
    cases = [c for c in CLOUDS.values() if c.source == name]
    assert cases, f"{name}: no case in tests/vm/providers.py CLOUDS"
    record = providers.BY_NAME[name]
    assert {c.cloud_name for c in cases} == {record.cloud_name}


@pytest.mark.parametrize("name", NAMES)
def test_readme_table_has_its_row(name: str) -> None:
    assert name in _readme_rows(), f"{name}: no row in README's provider table"


def test_nothing_names_an_unknown_provider() -> None:
    known = set(NAMES)
    shells = {p.stem for p in (MICROBOOT / "providers").glob("*.sh")}
    assert shells == {p.shell_file[:-3] for p in providers.PROVIDERS}
    assert {r.provider for r in detect.load_rules()} == known
    assert set(FAKES) <= known
    assert set(fallback.DELEGATES) <= known
    assert {c.source for c in CLOUDS.values() if c.source} <= known


def test_every_image_format_has_its_provider() -> None:
    for fmt in formats.FORMATS:
        provider = providers.with_media(fmt)
        assert fmt in provider.media
    media = [fmt for p in providers.PROVIDERS for fmt in p.media]
    assert sorted(media) == sorted(formats.FORMATS)


def test_what_each_record_gives_fits_the_code() -> None:
    for p in providers.PROVIDERS:
        assert (p.delegate is None) == (fallback.delegate_for(p.name) is None)
        assert (providers.NETWORK in p.gives) == (p.network is not None)
        assert not p.limit_counts_base64 or p.user_data_limit
