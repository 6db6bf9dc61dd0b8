"""µCernVM's block checked: markers, keys, switch values, lines µCernVM ignores.

Both as this project reads the block (in its part) and as µCernVM itself
reads the raw user-data (:func:`raw_markers`: CR LF markers, an end before
the begin, a second block). Apart from the other checks: it follows the
rules of µCernVM's shell, not of amiconfig or cloud-init.
"""

from __future__ import annotations

from cloudinit_cernvm import ucernvm
from cloudinit_cernvm.validate.problem import Place, Problem

#: µCernVM keys that take on/off
SWITCH_KEYS = frozenset({"RESIZE_ROOTFS", "USE_BOOTHD", "USEGLIDEINWMS", "CVM_CLUSTER_MASTER"})
_SWITCH_VALUES = frozenset({"1", "0", "YES", "NO", "ON", "OFF", "TRUE", "FALSE"})


def check_ucernvm(text: str, place: Place) -> list[Problem]:
    """A µCernVM block: markers, keys, switch values, lines µCernVM ignores."""
    problems: list[Problem] = []
    inside = False
    ended = False
    for number, line in enumerate(text.split("\n"), start=1):
        if line == ucernvm.BEGIN:
            inside = True
            continue
        if line == ucernvm.END:
            ended = True
            break
        if not inside:
            continue
        if "=" not in line:
            if line.strip():
                problems.append(
                    place.problem(number, "ucernvm-no-equals", "µCernVM ignores this line: no '='")
                )
            continue
        problems += _ucernvm_setting(line, number, place)
    if inside and not ended:
        problems.append(
            place.problem(
                None,
                "ucernvm-no-end",
                f"the µCernVM block has no line '{ucernvm.END}': it runs to the end of the data",
            )
        )
    return problems


def _ucernvm_setting(line: str, number: int, place: Place) -> list[Problem]:
    key, value = line.split("=", 1)
    name = key.strip()
    if key != name:
        return [
            place.problem(
                number,
                "ucernvm-key-blanks",
                f"blanks around the key '{name}': µCernVM keeps them and the key then names "
                "nothing; write key=value",
            )
        ]
    if not ucernvm.is_known(name):
        guess = ucernvm.suggest(key)
        hint = f" (did you mean '{guess}'?)" if guess else ""
        return [
            place.problem(
                number,
                "ucernvm-unknown-key",
                f"unknown µCernVM key '{name}': it only becomes the variable "
                f"{ucernvm.PREFIX}{name.upper()}{hint}",
            )
        ]
    if name.upper() in SWITCH_KEYS and _unquoted(value).upper() not in _SWITCH_VALUES:
        return [
            place.problem(
                number,
                "ucernvm-switch-value",
                f"µCernVM key '{name}' takes on or off, not '{value}'",
            )
        ]
    return []


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def raw_markers(text: str) -> list[Problem]:
    """What µCernVM, reading the raw text, will make of its markers."""
    problems: list[Problem] = []
    lines = text.split("\n")
    begins = [i for i, line in enumerate(lines, start=1) if line.rstrip("\r") == ucernvm.BEGIN]
    ends = [i for i, line in enumerate(lines, start=1) if line.rstrip("\r") == ucernvm.END]
    crs = [i for i in sorted(begins + ends) if lines[i - 1].endswith("\r")]
    if crs:
        problems.append(
            Problem(
                f"line {crs[0]}",
                "CR LF line ends: this project reads the µCernVM block, but older µCernVM "
                "images do not recognise its markers with a CR; save the file with LF line ends",
                "ucernvm-crlf",
                None,
                crs[0],
            )
        )
    if ends and (not begins or ends[0] < begins[0]):
        problems.append(
            Problem(
                f"line {ends[0]}",
                f"'{ucernvm.END}' before any '{ucernvm.BEGIN}': µCernVM stops reading here",
                "ucernvm-end-first",
                None,
                ends[0],
            )
        )
    if len(begins) > 1:
        problems.append(
            Problem(
                f"line {begins[1]}",
                "a second µCernVM block: µCernVM reads only the first",
                "ucernvm-second-block",
                None,
                begins[1],
            )
        )
    return problems
