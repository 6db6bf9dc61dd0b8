"""``cernvm-context``: convert, check and inspect CernVM contexts.

For the people who prepare contexts (``convert``, ``validate``,
``make-iso``) and for those who debug a booted machine (``detect``,
``show``). Every error is one line on stderr with a non-zero exit status;
no traceback reaches the user.

Exit status: 0 success; 1 errors found (``validate``; with ``--strict``
warnings too), nothing detected
(``detect``), no seed (``show``) or data that cannot be converted; 2 usage
errors and unreadable files; 70 an internal error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import sys
from typing import Any

from cloudinit_cernvm import (
    DEFAULT_SEED_DIR,
    __version__,
    contextsh,
    gzip_input,
    input_file,
    mime_read,
    providers,
    show,
    userdata,
)
from cloudinit_cernvm.userdata_part import UserDataError, printable

PROG = "cernvm-context"


def _limited_clouds() -> tuple[providers.Provider, ...]:
    """The clouds that limit user-data, one provider each: a config drive is
    OpenStack's, and OpenStack's limit is already said."""
    first: dict[str, providers.Provider] = {}
    for provider in providers.PROVIDERS:
        if provider.user_data_limit:
            first.setdefault(provider.cloud_name, provider)
    return tuple(first.values())


#: the clouds ``convert`` warns about (``Provider.user_data_limit``)
LIMITED = _limited_clouds()

DEFAULT_CLOUD_DIR = "/var/lib/cloud"


class CliError(Exception):
    """An error for the user: one line, and the exit status to use."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def read_user_data(path: str | None) -> bytes:
    """Read user-data from ``path`` (``-`` or None: stdin), at most ``input_file.MAX_INPUT``.

    A HEPiX/OpenNebula ``context.sh`` is read as the user-data it carries.
    """
    from_stdin = path in (None, "-")
    label = "stdin" if from_stdin else str(path)
    try:
        raw = input_file.read_input(path)
    except input_file.InputTooLarge as exc:
        raise CliError(f"{label}: more than {exc.cap // (1024 * 1024)} MiB; no cloud takes"
                       " user-data this large, and a seed this large is refused on boot") from None
    except OSError as exc:
        if from_stdin:
            raise
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", 2) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    variables = contextsh.parse(text)
    if variables:
        try:
            found = contextsh.user_data(variables)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if found:
            _say(f"{label} is a context.sh: reading the user-data in {found[0]}")
            return found[1]
    return raw


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


# --- convert -----------------------------------------------------------------


def size_warnings(
    raw_size: int, encoded_size: int, provider: str | None, gzipped: bool
) -> list[str]:
    """Warnings for each cloud whose user-data limit the output exceeds.

    ``raw_size`` counts the bytes before base64, ``encoded_size`` after;
    each cloud counts one of them (``Provider.limit_counts_base64``).
    """
    warnings = []
    chosen = providers.get(provider) if provider else None
    for cloud in (chosen,) if chosen else LIMITED:
        name, limit, after_base64 = cloud.name, cloud.user_data_limit, cloud.limit_counts_base64
        if not limit:
            continue
        size = encoded_size if after_base64 else raw_size
        if size > limit:
            form = "base64-encoded" if after_base64 else "before base64"
            advice = "" if gzipped else "; try --gzip"
            warnings.append(
                f"warning: {size} bytes ({form}) exceed {name}'s user-data limit of "
                f"{limit // 1024} KiB{advice}"
            )
    return warnings


def cmd_convert(args: argparse.Namespace) -> int:
    raw = read_user_data(args.file)
    out = userdata.normalize(raw)
    if out == gzip_input.gunzipped(raw) and not mime_read.looks_like_mime(out):
        _say("note: this is already one of cloud-init's own formats; written unchanged")
    if args.gzip:
        out = gzip.compress(out, mtime=0)
    raw_size = len(out)
    encoded = base64.b64encode(out) if args.base64 else None
    encoded_size = len(encoded) if encoded is not None else len(base64.b64encode(out))
    for warning in size_warnings(raw_size, encoded_size, args.provider, args.gzip):
        _say(warning)
    _write(encoded + b"\n" if encoded is not None else out)
    return 0


# --- validate ----------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from cloudinit_cernvm import validate
    from cloudinit_cernvm.validate.problem import ERROR, WARNING

    raw = read_user_data(args.file)
    problems = validate.check(raw)
    failed = validate.has_errors(problems, strict=args.strict)
    try:
        kind, parts = userdata.parts_of(raw)
    except UserDataError:  # check() has reported it already
        kind, parts = None, []
    if args.json:
        report = {
            "ok": not failed,
            "strict": args.strict,
            "errors": sum(p.severity == ERROR for p in problems),
            "warnings": sum(p.severity == WARNING for p in problems),
            "format": kind,
            "parts": [p.content_type for p in parts],
            "findings": [p.as_dict() for p in problems],
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 1 if failed else 0
    for problem in problems:
        print(problem)
    if failed or kind is None:
        return 1
    warned = len(problems)
    note = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
    types = ", ".join(p.content_type for p in parts)
    count = f"{len(parts)} part{'s' if len(parts) != 1 else ''}"
    print(f"ok{note}: {show.KIND_NAMES[kind]}, {count}: {types}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from cloudinit_cernvm import explain

    raw = read_user_data(args.file)
    report = explain.explain(raw)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(explain.render(report))
    return 0


# --- detect ------------------------------------------------------------------

NO_PROVIDER = "no provider recognised from local evidence"


def cmd_detect(args: argparse.Namespace) -> int:
    try:
        from cloudinit_cernvm import detect as detect_mod
    except ImportError:
        raise CliError("provider detection is not available in this installation") from None
    found = detect_mod.detect(sysroot=args.sysroot, media_dir=args.media_dir)
    evidence = found.evidence if found else None
    items = [evidence] if isinstance(evidence, str) else list(evidence or [])
    if args.json:
        # as ``show --json``: one object on stdout whatever was found, the
        # exit status telling which; a miss is its "error", not a stderr line
        report: dict[str, Any] = {"sysroot": args.sysroot, "media_dir": args.media_dir,
                                  "provider": found.provider if found else None,
                                  "evidence": items}
        if found is None:
            report["error"] = NO_PROVIDER
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0 if found else 1
    if found is None:
        _say(NO_PROVIDER)
        return 1
    print(found.provider)
    for item in items:
        print(f"  {item}")
    return 0


# --- make-iso ----------------------------------------------------------------


def _make_iso_module() -> Any:
    try:
        from cloudinit_cernvm.context_image import make_iso
    except ImportError as exc:
        if exc.name and exc.name.startswith("pycdlib"):
            raise CliError(
                "make-iso needs pycdlib: pip install 'cloudinit-cernvm[iso]'", 2
            ) from None
        raise CliError("make-iso is not available in this installation", 2) from None
    return make_iso


def cmd_make_iso(args: argparse.Namespace) -> int:
    return int(_make_iso_module().run(args))


# --- the parser --------------------------------------------------------------

_EPILOGS = {
    "convert": "example:\n  cernvm-context convert legacy.txt > user-data.mime\n"
    "  cernvm-context convert --gzip --base64 --provider EC2 legacy.txt",
    "validate": "exit status: 0 no error (warnings are printed with 'warning:'), 1 errors\n"
    "(or, with --strict, warnings)\n\n"
    "example:\n  cernvm-context validate legacy.txt && echo ready\n"
    "  cernvm-context validate --strict --json legacy.txt | jq '.findings[].code'",
    "explain": "example:\n  cernvm-context explain legacy.txt\n"
    "  cernvm-context explain --json context.sh | jq .ucernvm",
    "detect": "example:\n  cernvm-context detect\n"
    "  cernvm-context detect --sysroot /tmp/fake-root\n"
    "  cernvm-context detect --json | jq -r .provider",
    "show": "example:\n  cernvm-context show\n  cernvm-context show --json | jq .user_data",
    "make-iso": "example:\n  cernvm-context make-iso --help   (options of the image builder)",
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``verb`` names the verb about to run, if known.

    ``make-iso``'s options come from ``context_image.make_iso``, imported only when
    that verb runs, so the other verbs work without pycdlib.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert, check and inspect CernVM contexts (user-data).",
        epilog="run 'cernvm-context VERB --help' for each verb's options and an example",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    raw = argparse.RawDescriptionHelpFormatter

    def add(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return verbs.add_parser(
            name, help=summary, description=description, epilog=_EPILOGS[name], formatter_class=raw
        )

    conv = add(
        "convert",
        "old-syntax (or any) user-data to MIME multipart on stdout",
        "Write FILE as normalised MIME multipart on stdout: each section of old-syntax\n"
        "user-data in its own part, base64 parts of MIME input decoded. Data already in\n"
        "one of cloud-init's own formats is written unchanged.",
    )
    conv.add_argument(
        "file", nargs="?", metavar="FILE", help="user-data or context.sh (default: stdin)"
    )
    conv.add_argument("--gzip", action="store_true", help="gzip the output")
    conv.add_argument(
        "--base64", action="store_true", help="base64-encode the output (after --gzip)"
    )
    conv.add_argument(
        "--provider",
        choices=sorted((p.name for p in providers.PROVIDERS if p.user_data_limit), key=str.lower),
        type=lambda s: providers.canonical(s) or s,
        help="warn only about this cloud's size limit (default: every limit exceeded)",
    )
    conv.set_defaults(func=cmd_convert)

    val = add(
        "validate",
        "check user-data; exit 1 on errors, each finding on its own line",
        "Check FILE as µCernVM, amiconfig and cloud-init will read it; print each\n"
        "finding with where it is and its code. An error: the context will not do what\n"
        "it says (exit 1). A warning: it works here but not with an older µCernVM or\n"
        "amiconfig, or it is probably a typo (exit 0, unless --strict).",
    )
    val.add_argument(
        "file", nargs="?", metavar="FILE", help="user-data or context.sh (default: stdin)"
    )
    val.add_argument(
        "--strict", action="store_true", help="exit 1 on warnings too, not only on errors"
    )
    val.add_argument(
        "--json",
        action="store_true",
        help="print the findings as JSON (line, part, severity, code, message)",
    )
    val.set_defaults(func=cmd_validate)

    exp = add(
        "explain",
        "what µCernVM, amiconfig and cloud-init will each read from FILE",
        "Show, offline, what each consumer reads from FILE: the µCernVM settings as the\n"
        "_UCONTEXT_ lines the microboot stage writes, amiconfig's sections, options and\n"
        "plugins as its parser reads the joined parts, each script and when it runs, the\n"
        "cloud-config keys, and the lines no consumer reads. Passwords are not shown.",
    )
    exp.add_argument(
        "file", nargs="?", metavar="FILE", help="user-data or context.sh (default: stdin)"
    )
    exp.add_argument("--json", action="store_true", help="print JSON, for scripts")
    exp.set_defaults(func=cmd_explain)

    det = add(
        "detect",
        "print the provider this machine shows, from local evidence",
        "Print the provider (cloud) recognised from local evidence (DMI, kernel command\n"
        "line, labelled disks) and the evidence. Exit status 1 when none is recognised.",
    )
    det.add_argument(
        "--sysroot",
        default=os.environ.get("CERNVM_SYSROOT", "/"),
        help="root holding /sys and /proc/cmdline (default: $CERNVM_SYSROOT or /)",
    )
    det.add_argument(
        "--media-dir",
        default=os.environ.get("CERNVM_MEDIA_DIR") or None,
        help="directory whose label-named sub-directories stand for disks "
        "(default: $CERNVM_MEDIA_DIR)",
    )
    det.add_argument("--json", action="store_true", help="print JSON, for scripts")
    det.set_defaults(func=cmd_detect)

    show_verb = add(
        "show",
        "on a booted machine: seed, provider, parts, what each handler did",
        "Show the seed (provider, meta-data, user-data parts) and what this project's\n"
        "handlers recorded. Names and sizes only: no values, no secrets.",
    )
    show_verb.add_argument(
        "--seed-dir", default=DEFAULT_SEED_DIR, help=f"seed directory (default: {DEFAULT_SEED_DIR})"
    )
    show_verb.add_argument(
        "--cloud-dir",
        default=DEFAULT_CLOUD_DIR,
        help=f"cloud-init's directory (default: {DEFAULT_CLOUD_DIR})",
    )
    show_verb.add_argument("--json", action="store_true", help="print JSON, for scripts")
    show_verb.set_defaults(func=show.cmd_show)

    iso = add(
        "make-iso",
        "write a context image (context.sh, config-2, CloudStack config drive)",
        "Write a context image for clouds without a user-data service.",
    )
    iso.set_defaults(func=cmd_make_iso)
    if verb == "make-iso":
        _make_iso_module().add_arguments(iso)
    return parser


def _verb_of(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: list[str] | None = None) -> int:
    """Run ``cernvm-context``; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(_verb_of(argv))
        args = parser.parse_args(argv)
        return int(args.func(args))
    except CliError as exc:
        _say(str(exc))
        return exc.status
    except UserDataError as exc:
        _say(str(exc))
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. '| head'): not an error worth a message.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except OSError as exc:
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        _say(f"error{name}: {exc.strerror or exc}")
        return 2
    except Exception as exc:  # a bug: still one line, never a traceback
        detail = printable(str(exc).split("\n", 1)[0])
        _say(f"internal error: {type(exc).__name__}: {detail} (please report)")
        return 70


if __name__ == "__main__":
    sys.exit(main())
