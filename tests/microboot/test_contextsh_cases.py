"""The two readers of context.sh read it alike: the CLI's
(cloudinit_cernvm/contextsh.py, behind ``cernvm-context validate/convert``)
and the microboot stage's (context_vars in providers/opennebula.sh, busybox
awk), so that ``validate context.sh`` checks the data that boots. One table
of cases (tests/data/contextsh-cases.json) runs against both, and generated
texts against both again."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from cloudinit_cernvm import contextsh

from .conftest import FETCH, Machine, no_seed, run_fetch

TOP = FETCH.parents[2]
CASES = json.loads((TOP / "tests/data/contextsh-cases.json").read_text())["cases"]
BY_NAME = {case["name"]: case for case in CASES}
WITH_USER_DATA = [case["name"] for case in CASES if "user_data" in case]
MB = FETCH.parent


def shell_read(bbpath: Path, work: Path, texts: list[str]) -> list[dict[str, str]]:
    """The variables of each text as the microboot's context_vars writes
    them, all in one busybox sh run."""
    work.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        (work / f"{i}.sh").write_bytes(text.encode())
        (work / f"{i}.d").mkdir()
    script = (f'set -f; . "{MB}/lib/common.sh"; . "{MB}/providers/opennebula.sh"\n'
              f'i=0; while [ "$i" -lt {len(texts)} ]; do\n'
              f'  context_vars "{work}/$i.sh" "{work}/$i.d/" || exit 1; i=$((i + 1))\ndone')
    done = subprocess.run([str(bbpath / "sh"), "-c", script], env={"PATH": str(bbpath)},
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [{p.name: p.read_bytes().decode() for p in (work / f"{i}.d").iterdir()}
            for i in range(len(texts))]


def expected_user_data(case: dict) -> bytes | None:
    want = case["user_data"]
    return None if want.get("error") or want["name"] is None else want["text"].encode()


@pytest.mark.parametrize("name", list(BY_NAME))
def test_the_cli_reader(name: str) -> None:
    case = BY_NAME[name]
    variables, _other = contextsh.read(case["text"])
    assert variables == case["variables"]
    assert (contextsh.parse(case["text"]) is not None) == case["context_sh"]
    if "user_data" not in case:
        return
    want = case["user_data"]
    if want.get("error"):
        with pytest.raises(ValueError, match=r"^context\.sh: "):
            contextsh.user_data(variables)
    elif want["name"] is None:
        assert contextsh.user_data(variables) is None
    else:
        assert contextsh.user_data(variables) == (want["name"], want["text"].encode())


def test_the_microboot_reader(bbpath: Path, tmp_path: Path) -> None:
    got = shell_read(bbpath, tmp_path / "cases", [case["text"] for case in CASES])
    wrong = {case["name"]: (vars_, case["variables"]) for case, vars_ in zip(CASES, got)
             if vars_ != case["variables"]}
    assert wrong == {}


@pytest.mark.parametrize("name", WITH_USER_DATA)
def test_the_microboot_user_data(name: str, bbpath: Path, tmp_path: Path) -> None:
    case = BY_NAME[name]
    run = run_fetch(bbpath, tmp_path, Machine(media={"CONTEXT": {
        "context.sh": case["text"].encode()}}))
    if case["user_data"].get("error"):
        assert run.rc == 2, run.stderr
        assert no_seed(run.seed)
        return
    assert run.rc == 0, run.stderr
    want = expected_user_data(case)
    assert (run.seed / "user-data").read_bytes() == (want or b"")


# pieces that mean something to one reader or the other, and plain ones
PIECES = ["A", "B", "_X1", "export", "echo", "=", "==", " ", "\t", "\n", ";", "#", "'", '"',
          "\\", "\\\n", "$", "$(", "(", ")", "`", "'\\''", "x y", "é", "\r", "1", "=''",
          "${A}", "A=", "B='", 'C="', "if", "\\'", '\\"', "\\$", "a" * 300, "N" * 127,
          " A=1 ", "\tB=", "export C="]


def generated(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        texts.append("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 40))))
    return texts


def test_generated_texts_read_alike(bbpath: Path, tmp_path: Path) -> None:
    texts = generated(1000, 22)
    got = shell_read(bbpath, tmp_path / "gen", texts)
    wrong = [(text, shell, contextsh.read(text)[0]) for text, shell in zip(texts, got)
             if shell != contextsh.read(text)[0]]
    assert wrong[:3] == []
