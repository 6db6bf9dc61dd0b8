"""``cernvm-context show``: what a booted machine got, and what the handlers did with it.

On the machine (or a copy of its disk) ``show`` reads the seed and the
handlers' records under cloud-init's directory and reports names and sizes
only: meta-data values that identify the instance and nothing else, no
user-data or vendor-data values, the records reduced to what tells what a
handler did. The gathering and that reduction are this module's one job,
apart from the command line so that the redaction rules stand in one place.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from cloudinit_cernvm import content_types, redact, safefile, userdata
from cloudinit_cernvm.userdata_part import SCRIPT_HEADER, Part, UserDataError

#: the handlers' records are small; a bigger one is not theirs
MAX_RECORD = 1024 * 1024

#: user-data formats (``userdata.parts_of``) as a person reads them
KIND_NAMES = {"mime": "MIME", "old-syntax": "old syntax", "cloud-init": "cloud-init format"}

_SAFE_META = ("instance-id", "local-hostname", "availability-zone", "region")
_SAFE_RECORD = frozenset(
    {
        "command",
        "exit_status",
        "returncode",
        "status",
        "duration",
        "duration_ms",
        "duration_s",
        "seconds",
        "started",
        "finished",
        "time",
        "ran",
        "skipped",
        "reason",
        "version",
        "handler",
        "frequency",
        "provider",
        "source",
        "count",
    }
)
_LIST_RECORD = frozenset({"warnings", "parts", "problems", "types", "errors", "messages"})


def _ini_summary(text: str) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = []
    from cloudinit_cernvm import amiconfig_ini

    for line in text.split("\n"):
        header = amiconfig_ini.SECTION.match(line)
        if header:
            sections.append({"section": header.group("header"), "keys": []})
            continue
        option = amiconfig_ini.OPTION.match(line)
        if option and sections and not line[:1].isspace() and line.strip()[:1] not in "#;":
            sections[-1]["keys"].append(option.group("option").strip())
    return sections


def _cloud_config_keys(text: str) -> list[str]:
    try:
        import yaml

        loaded = yaml.safe_load(text)
    except Exception:  # not YAML: validate says why
        return []
    return sorted(str(k) for k in loaded) if isinstance(loaded, dict) else []


def describe_part(part: Part) -> dict[str, Any]:
    """What ``show`` tells about a part: its type, size and names, never values."""
    info: dict[str, Any] = {"type": part.content_type, "bytes": len(part.payload)}
    if part.encoded is not None:
        return info
    ctype = part.content_type
    text = part.text
    if ctype in (content_types.AMICONFIG, content_types.AMICONFIG_USER_DATA):
        info["sections"] = _ini_summary(text)
    elif ctype == content_types.UCERNVM:
        from cloudinit_cernvm import ucernvm

        info["keys"] = [key for _, key, _ in ucernvm.block_lines(text)]
    elif ctype == content_types.CLOUD_CONFIG:
        info["keys"] = _cloud_config_keys(text)
    elif ctype in (content_types.SCRIPT, content_types.SCRIPT_BEFORE):
        info["interpreter"] = text.split("\n", 1)[0][2:].strip()
        info["lines"] = text.count("\n")
        when = part.header(SCRIPT_HEADER)
        if when:
            info["runs"] = f"{when} amiconfig"
    return info


def _redact(record: Any) -> Any:
    """Keep what tells what a handler did; reduce everything else to names."""
    if not isinstance(record, dict):
        return type(record).__name__
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in _SAFE_RECORD and isinstance(value, str):
            out[key] = redact.redact_text(value)
        elif key in _SAFE_RECORD and isinstance(value, (int, float, bool, type(None))):
            out[key] = value
        elif key in _LIST_RECORD and isinstance(value, list):
            out[key] = [redact.redact_text(v) if isinstance(v, str) else _redact(v)
                        for v in value]
        elif key in _LIST_RECORD and isinstance(value, (int, float)):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = {"keys": sorted(str(k) for k in value)}
        elif isinstance(value, list):
            out[key] = {"items": len(value)}
        else:
            out[key] = "(set)"
    return out


def gather_show(seed_dir: str, cloud_dir: str) -> tuple[dict[str, Any], bool]:
    """Collect what ``show`` reports; the flag tells whether a seed was found."""
    from cloudinit_cernvm import seed as seed_mod

    report: dict[str, Any] = {"seed": seed_dir}
    found = True
    try:
        seed = seed_mod.read_seed(seed_dir)
    except (seed_mod.NoSeed, seed_mod.SeedError) as exc:
        report["error"] = str(exc).splitlines()[0] if str(exc) else f"no seed at {seed_dir}"
        found = False
        seed = None
    if seed is not None:
        report["provider"] = seed.provider
        meta = dict(seed.meta_data or {})
        report["meta_data"] = {
            "values": {k: meta[k] for k in _SAFE_META if k in meta},
            "public_keys": len(meta.get("public-keys") or []),
            "keys": sorted(str(k) for k in meta),
        }
        report["ucontext"] = sorted(seed.ucontext or {})
        # presence and size only: a site's vendor-data may carry credentials
        report["vendor_data"] = {
            name: {"bytes": len(raw), "from": seed_mod.VENDOR_FILES[name],
                   "valid": name in seed.vendor_data}
            for name, raw in seed.vendor_raw.items()
        }
        report["seed_problems"] = [redact.redact_text(p) for p in seed.problems or []]
        raw = seed.user_data or b""
        ud: dict[str, Any] = {"bytes": len(raw)}
        try:
            kind, parts = userdata.parts_of(raw)
            ud["format"] = kind
            ud["parts"] = [describe_part(p) for p in parts]
        except UserDataError as exc:
            ud["error"] = str(exc)
        report["user_data"] = ud
    records: dict[str, Any] = {}
    base = _instance_dir(Path(cloud_dir)) / "cernvm"
    for name in ("amiconfig.json", "ucernvm.json", "hepix.json"):
        path = base / name
        if not os.path.lexists(path):
            continue
        try:
            text = safefile.read_regular(str(path), MAX_RECORD).decode("utf-8", "replace")
            records[name] = _redact(json.loads(text))
        except OSError as exc:
            records[name] = {"error": f"unreadable: {exc.strerror or exc}".splitlines()[0]}
        except (ValueError, RecursionError) as exc:
            reason = "nested too deep" if isinstance(exc, RecursionError) else exc
            records[name] = {"error": f"unreadable: {reason}".splitlines()[0]}
    report["records"] = {"dir": str(base), "files": records}
    return report, found


def _instance_dir(cloud_dir: Path) -> Path:
    """The current instance's directory, found from cloud-init's own records.

    ``instance`` is an absolute link that only resolves on the machine
    itself; ``data/instance-id`` names the instance wherever the directory
    is read (a rescue system, a copy of a disk).
    """
    try:
        raw = safefile.read_regular(str(cloud_dir / "data" / "instance-id"), 4096)
        iid = raw.decode("utf-8", "replace").strip()
    except OSError:
        iid = ""
    if iid and "/" not in iid and (cloud_dir / "instances" / iid).is_dir():
        return cloud_dir / "instances" / iid
    return cloud_dir / "instance"


def _print_show(report: dict[str, Any]) -> None:
    print(f"seed:       {report['seed']}")
    if "error" in report:
        print(f"            {report['error']}")
    if "provider" in report:
        print(f"provider:   {report['provider']}")
        meta = report["meta_data"]
        shown = ", ".join(f"{k} {v}" for k, v in meta["values"].items()) or "none"
        keys = ", ".join(meta["keys"]) or "-"
        print(f"meta-data:  {shown}; {meta['public_keys']} public key(s); keys: {keys}")
        print(f"ucontext:   {', '.join(report['ucontext']) or '-'}")
        vendor = [f"{name} ({info['from']}, {info['bytes']} bytes"
                  f"{'' if info['valid'] else ', not used'})"
                  for name, info in report["vendor_data"].items()]
        print(f"vendor:     {', '.join(vendor) or 'none'}")
        ud = report["user_data"]
        if "error" in ud:
            print(f"user-data:  {ud['bytes']} bytes, unreadable: {ud['error']}")
        else:
            parts = ud["parts"]
            kind = KIND_NAMES[ud["format"]]
            print(f"user-data:  {ud['bytes']} bytes, {kind}, {len(parts)} part(s)")
            for index, info in enumerate(parts, start=1):
                print(f"  part {index}: {info['type']}, {info['bytes']} bytes{_part_details(info)}")
        for problem in report["seed_problems"]:
            print(f"problem:    {problem}")
    records = report["records"]
    if records["files"]:
        print(f"handlers:   {records['dir']}")
        for name, record in records["files"].items():
            fields = "; ".join(f"{k}: {_flat(v)}" for k, v in record.items())
            print(f"  {name}: {fields}")
    else:
        print(f"handlers:   no records in {records['dir']}")


def _part_details(info: dict[str, Any]) -> str:
    if "sections" in info:
        return (
            "; "
            + "; ".join(
                f"[{s['section']}] {', '.join(s['keys']) or '(empty)'}" for s in info["sections"]
            )
            if info["sections"]
            else ""
        )
    if "keys" in info:
        return f"; keys: {', '.join(info['keys']) or '-'}"
    if "interpreter" in info:
        runs = f", runs {info['runs']}" if "runs" in info else ""
        return f"; {info['interpreter']}, {info['lines']} lines{runs}"
    return ""


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        if set(value) == {"keys"}:
            return ", ".join(value["keys"]) or "-"
        return ", ".join(f"{k} {_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flat(v) for v in value) or "-"
    return str(value)


def cmd_show(args: argparse.Namespace) -> int:
    report, found = gather_show(args.seed_dir, args.cloud_dir)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_show(report)
    return 0 if found else 1

