"""Record the µCernVM part of the user-data and check it against the seed.

The bootloader applied the µCernVM settings before cloud-init ran and saved
them in the seed's ``ucontext``. In the booted system the ``text/ucernvm``
part is read again with µCernVM's own rules (``ucernvm.py``), written where
``cernvm-context show`` and the image's scripts read it, and compared with
what the bootloader saved: a difference means the running system does not
match the user-data (an old bootloader, a changed context), which is worth
a warning. Unknown keys are warned about with the key they were most likely
meant to be.

Values of secret-looking keys (``cernvm_inject``, passwords, PINs, tokens)
never reach a log line, nor do credentials inside other values (a proxy
URL's ``user:password@``): ``redact.py`` decides; the records are 0600 like
the seed.

Plain functions, standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping

from cloudinit_cernvm import redact, ucernvm
from cloudinit_cernvm.private_files import private_dir, write_json, write_private

JSON_NAME = "ucernvm.json"
ENV_NAME = "ucernvm.env"
#: the records of the site's extra user-data: ``extra-ucernvm.json``, ``.env``
EXTRA_STEM = "extra-ucernvm"

def is_secret(key: str) -> bool:
    """Whether the value of ``key`` must stay out of logs (``redact.is_secret_key``)."""
    return redact.is_secret_key(key)


def shown(key: str, value: str) -> str:
    """A value as a log line may show it: quoted and redacted, or hidden for secrets."""
    return redact.shown(key, value)


class Check:
    """The settings of a ``text/ucernvm`` part and what is wrong with them.

    A plain class, not a dataclass: see ``seed.Seed``.
    """

    __slots__ = ("compared", "differences", "settings", "unknown", "warnings")

    def __init__(self, settings: dict[str, str]) -> None:
        self.settings = settings
        self.unknown: list[str] = []
        self.differences: list[dict] = []
        self.compared = False
        self.warnings: list[str] = []


def check(text: str, seed_ucontext: Mapping[str, str] | None, name: str = "text/ucernvm") -> Check:
    """Parse the part as µCernVM does and compare it with the seed's ``ucontext``.

    ``seed_ucontext`` is None when the seed has no ``ucontext`` file (a
    bootloader that writes none): nothing is compared then.
    """
    lines = ucernvm.block_lines(text)
    result = Check(settings=ucernvm.parse_block(text))
    if ucernvm.BEGIN not in text.split("\n"):
        result.warnings.append(
            f"{name}: no '{ucernvm.BEGIN}' line; µCernVM ignores this part"
        )
    seen: set[str] = set()
    for number, key, _value in lines:
        if ucernvm.is_known(key) or key.upper() in seen:
            continue
        seen.add(key.upper())
        result.unknown.append(key)
        hint = ucernvm.suggest(key)
        why = f" (did you mean '{hint}'?)" if hint and hint.upper() != key.upper() else ""
        result.warnings.append(f"{name} line {number}: unknown µCernVM key '{key}'{why}")
    if seed_ucontext is None:
        return result
    result.compared = True
    for key in sorted(set(result.settings) | set(seed_ucontext)):
        in_part, in_seed = result.settings.get(key), seed_ucontext.get(key)
        if in_part == in_seed:
            continue
        result.differences.append({"key": key, "user_data": in_part, "ucontext": in_seed})
        if in_seed is None:
            what = (f"{key}={shown(key, in_part or '')} is in the user-data"
                    " but not in the seed's ucontext")
        elif in_part is None:
            what = f"{key}={shown(key, in_seed)} is in the seed's ucontext but not in the user-data"
        else:
            what = (f"{key} is {shown(key, in_part)} in the user-data but"
                    f" {shown(key, in_seed)} in the seed's ucontext")
        result.warnings.append(f"{name}: {what}; the bootloader applied the ucontext")
    return result


def write(directory: str, result: Check, source: str,
          stem: str = "ucernvm") -> tuple[str, str]:
    """Write ``<stem>.json`` and ``<stem>.env`` (0600) into ``directory`` (0700)."""
    private_dir(directory)
    json_path = f"{directory}/{stem}.json"
    env_path = f"{directory}/{stem}.env"
    write_json(json_path, {
        "source": source,
        "settings": result.settings,
        "secret_keys": sorted(k for k in result.settings if is_secret(k)),
        "unknown_keys": result.unknown,
        "compared_with_ucontext": result.compared,
        "differences": result.differences,
        "warnings": result.warnings,
    })
    write_private(env_path, ucernvm.format_ucontext(result.settings).encode("utf-8"))
    return json_path, env_path
