"""The RPM, as CernVM images install it.

tools/build-rpm builds it twice (release 1 from the git tree, release 2 from
the working tree), then: rpm lists its files, config files and requirements,
rpmlint checks it, and it is installed into scratch roots (``rpm --root``)
where real cloud-init, given only that root's site directory, finds the
datasource and the part-handlers. Upgrading keeps an edited config; erasing
leaves nothing that still names the datasource. The earlier release
(``v0.1.0``, from git history) is built by its own tools/build-rpm and
upgraded to this tree's RPM with scriptlets run, between two stages of a
real cloud-init boot.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cloudinit import test_upgrade as upgrades
from tests.harness import earlier as earlier_release
from tests.harness import sandbox

TOP = Path(__file__).resolve().parents[2]
SPEC = TOP / "packaging/rpm/cloudinit-cernvm.spec"
LINT_CONFIG = TOP / "packaging/rpm/rpmlint.toml"
PROBE = Path(__file__).with_name("cloudinit_probe.py")

CFG = "etc/cloud/cloud.cfg.d/90_cernvm.cfg"
SHIM = "var/lib/cloud/handlers/cernvm_handlers.py"
MICROBOOT = "usr/share/cloudinit-cernvm/microboot"
COMMAND = "usr/bin/cernvm-context"
MANPAGE = "usr/share/man/man1/cernvm-context.1.gz"
COMPLETION = "usr/share/bash-completion/completions/cernvm-context"
#: the rpmlint warnings the spec explains in its header comment
EXPLAINED_WARNINGS = {"invalid-url"}


_versions = sandbox.wanted_releases


def _run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _query(rpm_file: Path, *args: str) -> list[str]:
    """Lines of an ``rpm -qp`` query."""
    return _run("rpm", "-qp", *args, str(rpm_file)).stdout.splitlines()


def _rpm_root(root: Path, *args: str) -> subprocess.CompletedProcess:
    """rpm acting on a scratch root, with its own database inside it."""
    return _run("rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", *args)


@dataclass
class Build:
    """One build of tools/build-rpm."""

    rpm: Path
    srpm: Path
    log: str


def _build(out: Path, release: str, *flags: str) -> Build:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DIST=str(out), RPM_RELEASE=release)
    proc = _run(str(TOP / "tools/build-rpm"), *flags, env=env)
    (rpm,) = out.glob("*.noarch.rpm")
    (srpm,) = out.glob("*.src.rpm")
    return Build(rpm, srpm, proc.stdout + proc.stderr)


def _shared(tmp_path_factory) -> Path:
    """The run's temporary directory that every pytest-xdist worker shares."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _once(out: Path, build) -> dict:
    """BUILD()'s record, made once for all workers (a lock beside OUT): a
    failing build is reported once per test, not redone."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done, failed = out / "done.json", out / "failed.txt"
        if failed.exists():
            pytest.fail(failed.read_text(), pytrace=False)
        if not done.exists():
            out.mkdir(parents=True, exist_ok=True)
            try:
                record = build()
            except AssertionError as exc:
                failed.write_text(str(exc))
                raise
            done.write_text(json.dumps(record))
        return json.loads(done.read_text())


def _saved(build: Build) -> dict:
    return vars(build) | {"rpm": str(build.rpm), "srpm": str(build.srpm)}


@pytest.fixture(scope="session")
def builds(tmp_path_factory) -> dict[str, Build]:
    """Release 1 (git tree, %check run) and 2 (working tree), built once.

    Under pytest-xdist the workers share the builds through a lock in the
    run's common temporary directory.
    """
    def build() -> dict:
        v1 = _build(out / "1", "1")
        v2 = _build(out / "2", "2", "--worktree", "--nocheck")
        return {k: _saved(b) for k, b in (("1", v1), ("2", v2))}

    out = _shared(tmp_path_factory) / "rpm-builds"
    saved = _once(out, build)
    return {k: Build(Path(v["rpm"]), Path(v["srpm"]), v["log"]) for k, v in saved.items()}


@pytest.fixture(scope="session")
def sitelib() -> str:
    """The site directory the spec names (its %files line for the package)."""
    parsed = _run("rpmspec", "-P", str(SPEC)).stdout
    found = re.findall(r"^(/\S+)/cloudinit_cernvm/$", parsed, re.M)
    assert len(found) == 1, parsed
    return found[0]


@pytest.fixture
def installed(builds, tmp_path) -> Path:
    """A scratch root with release 1 installed."""
    root = tmp_path / "root"
    root.mkdir()
    _rpm_root(root, "-i", "--nodeps", "--noscripts", str(builds["1"].rpm))
    return root


def _probe(root: Path, sitelib: str, version: str, tmp_path: Path) -> dict:
    """What cloud-init VERSION finds in ROOT, with nothing of the checkout."""
    release = sandbox.site_packages(version)
    # -S: no site processing, so the checkout's editable install stays out;
    # the virtualenv's libraries come after the release and the root.
    path = [str(release), str(root / sitelib.lstrip("/")), sysconfig.get_paths()["purelib"]]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(tmp_path),
    }
    proc = _run(sys.executable, "-S", str(PROBE), str(root), env=env, cwd=tmp_path)
    return json.loads(proc.stdout)


def _files_under(root: Path) -> set[str]:
    """Every file and link under ROOT but rpm's own database."""
    found = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("var/lib/rpm/") or (path.is_dir() and not path.is_symlink()):
            continue
        found.add(rel)
    return found


# --- the package as built -------------------------------------------------


def test_package_holds_every_part_under_the_spec_paths(builds, sitelib):
    files = set(_query(builds["1"].rpm, "-l"))
    pkg = f"{sitelib}/cloudinit_cernvm"
    for wanted in (
        f"{pkg}/__init__.py",
        f"{pkg}/DataSourceCernVM.py",
        f"{pkg}/handlers.py",
        f"{pkg}/handler_shim.py",
        f"{pkg}/cli.py",
        f"{pkg}/microboot",
        "/" + CFG,
        "/" + SHIM,
        "/" + COMMAND,
        "/" + MANPAGE,
        "/" + COMPLETION,
        f"{sitelib}/cloudinit_cernvm-{_version()}.dist-info/entry_points.txt",
        f"/{MICROBOOT}/fetch-context",
        "/usr/libexec/cloudinit-cernvm/amiconfig-user-guard",
        "/usr/lib/systemd/system/vmcontext_hepix.service.d/cloudinit-cernvm.conf",
        "/usr/libexec/cloudinit-cernvm/hepix-guard",
        "/usr/lib/systemd/system/vmcontext_prolog.service.d/cloudinit-cernvm.conf",
        "/usr/lib/systemd/system/vmcontext_epilog.service.d/cloudinit-cernvm.conf",
    ):
        assert wanted in files, f"{wanted} missing from the package"
    assert any(f.endswith("/README.rst") and "/doc/" in f for f in files)
    assert any(f.endswith("/LICENSE") and "/licenses/" in f for f in files)
    # Every Python file lands in the one site directory the spec names...
    python = {f for f in files if f.endswith(".py") and f != "/" + SHIM}
    assert python and all(f.startswith(pkg + "/") for f in python), python
    # ...and it is where the system's python3 imports from.
    syspath = _run("/usr/bin/python3", "-c", "import sys; print('\\n'.join(sys.path))").stdout
    assert sitelib in syspath.splitlines()
    assert _query(builds["1"].rpm, "--qf", "%{ARCH}\n") == ["noarch"]


def _version() -> str:
    """``cloudinit_cernvm.__version__``, read as tools/build-rpm reads it."""
    init = (TOP / "cloudinit_cernvm/__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"$', init, re.M).group(1)


def test_package_version_is_the_python_package_version(builds):
    version = _version()
    assert _query(builds["1"].rpm, "--qf", "%{VERSION}-%{RELEASE}\n") == [f"{version}-1"]
    assert _query(builds["2"].rpm, "--qf", "%{VERSION}-%{RELEASE}\n") == [f"{version}-2"]


def test_only_the_cloud_cfg_drop_in_is_config_and_it_is_noreplace(builds):
    assert _query(builds["1"].rpm, "-c") == ["/" + CFG]
    flags = dict(
        line.split(" ", 1)[::-1]
        for line in _query(builds["1"].rpm, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]")
    )
    assert set(flags["/" + CFG]) >= {"c", "n"}, flags["/" + CFG]


def test_requires_cloud_init_and_the_boot_path_libraries(builds):
    requires = {line.split()[0] for line in _query(builds["1"].rpm, "-R")}
    assert {"cloud-init", "python3-pyyaml", "python3-jinja2"} <= requires
    # Test tools are build requirements only.
    assert not any("pytest" in r or "hypothesis" in r for r in requires), requires


def test_microboot_stage_keeps_its_modes_and_the_package_links_to_it(builds, sitelib, tmp_path):
    # The modes the source tarball (inside the source RPM) gives the stage.
    subprocess.run(
        f"rpm2cpio '{builds['1'].srpm}' | cpio -idm --quiet '*.tar.gz'",
        shell=True, cwd=tmp_path, check=True,
    )
    (tarball,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers()
                   if "/cloudinit_cernvm/microboot/" in m.name and m.isfile()]
        source = {m.name.split("/cloudinit_cernvm/microboot/", 1)[1]: m.mode for m in members}
        source_bytes = {m.name.split("/cloudinit_cernvm/microboot/", 1)[1]:
                        tar.extractfile(m).read() for m in members}
    assert "fetch-context" in source
    shipped = {}
    for line in _query(builds["1"].rpm, "--qf", "[%{FILEMODES} %{FILELINKTOS} %{FILENAMES}\n]"):
        mode, *rest = line.split(" ")
        link, name = (rest[0], rest[1]) if len(rest) == 2 else ("", rest[-1])
        shipped[name] = (int(mode), link)
    for rel, mode in source.items():
        got, _ = shipped[f"/{MICROBOOT}/{rel}"]
        assert stat.S_IMODE(got) & 0o111 == mode & 0o111, f"{rel}: {oct(got)} vs {oct(mode)}"
    assert stat.S_IMODE(shipped[f"/{MICROBOOT}/fetch-context"][0]) == 0o755
    # Shipped byte for byte (no shebang rewriting: it runs in the initramfs),
    # and what the stage runs with is no requirement of the installed system.
    (root := tmp_path / "root").mkdir()
    subprocess.run(f"rpm2cpio '{builds['1'].rpm}' | cpio -idm --quiet",
                   shell=True, cwd=root, check=True)
    for rel, data in source_bytes.items():
        assert (root / MICROBOOT / rel).read_bytes() == data, rel
    file_requires = _query(builds["1"].rpm, "--qf", "[%{FILENAMES}\t%{FILEREQUIRE}\n]")
    assert [ln for ln in file_requires if ln.startswith(f"/{MICROBOOT}/") and
            ln.split("\t")[1]] == []
    mode, link = shipped[f"{sitelib}/cloudinit_cernvm/microboot"]
    assert stat.S_ISLNK(mode)
    target = os.path.normpath(os.path.join(f"{sitelib}/cloudinit_cernvm", link))
    assert not link.startswith("/") and target == f"/{MICROBOOT}"


def _rpmlint_sees_manual_pages() -> bool:
    """Whether rpmlint's no-manual-page-for-binary check can see a manual page.

    rpmlint 2.4.0 (Debian 12's) records each manual page by its section
    ("1") instead of its name, so it reports every command as having none;
    later releases match the name (a ``binary`` group in ``man_base_regex``).
    """
    code = ("from rpmlint.checks.FilesCheck import man_base_regex as r;"
            "print('binary' in r.groupindex)")
    python = Path(shutil.which("rpmlint") or "rpmlint").read_text().split("\n", 1)[0][2:].split()
    proc = subprocess.run([*python, "-c", code], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() != "False"


def test_rpmlint_reports_no_errors_and_only_explained_warnings(builds):
    proc = subprocess.run(
        ["rpmlint", "-c", str(LINT_CONFIG), str(builds["1"].rpm), str(builds["1"].srpm), str(SPEC)],
        capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    messages = re.findall(r"^\S+: ([EW]): (\S+) ?(\S*)", out, re.M)
    assert re.search(r"\b0 errors\b", out) and proc.returncode == 0, out
    assert not [m for m in messages if m[0] == "E"], out
    # Every command has its manual page: checked here, and by rpmlint where
    # its check works.
    files = _query(builds["1"].rpm, "-l")
    commands = {Path(f).name for f in files if f.startswith("/usr/bin/")}
    pages = {Path(f).name.split(".")[0] for f in files if f.startswith("/usr/share/man/man1/")}
    assert commands == {"cernvm-context"} and commands <= pages, (commands, pages)
    if not _rpmlint_sees_manual_pages():
        messages = [m for m in messages
                    if not (m[1] == "no-manual-page-for-binary" and m[2] in pages)]
    assert {ident for _, ident, _ in messages} <= EXPLAINED_WARNINGS, out
    for ident in EXPLAINED_WARNINGS:
        assert ident in SPEC.read_text(), f"{ident} not explained in the spec"


def test_check_section_ran_the_unit_tests_on_the_installed_copy(builds):
    log = builds["1"].log
    check = log[log.index("Executing(%check)"):]
    assert "--import-mode=append" in check and "tests/unit" in check
    assert re.search(r"^\d+ passed", check, re.M), check[-2000:]


def test_source_tarball_from_the_working_tree_holds_no_local_state(builds, tmp_path):
    subprocess.run(
        f"rpm2cpio '{builds['2'].srpm}' | cpio -idm --quiet '*.tar.gz'",
        shell=True, cwd=tmp_path, check=True,
    )
    (tarball,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    top = names[0].split("/")[0]
    assert all(n.split("/")[0] == top for n in names)
    junk = {".git", ".venv", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}
    assert not [n for n in names if junk & set(n.split("/")[1:])]
    for wanted in ("pyproject.toml", "setup.cfg", "setup.py", "LICENSE",
                   "packaging/rpm/cloudinit-cernvm.spec", "tools/cli_docs.py"):
        assert f"{top}/{wanted}" in names


# --- installed into a scratch root ------------------------------------------


@pytest.mark.parametrize("version", _versions())
def test_cloudinit_finds_datasource_and_handlers_from_installed_paths(
    version, installed, sitelib, tmp_path
):
    found = _probe(installed, sitelib, version, tmp_path)
    assert found["cloudinit_file"].startswith(str(sandbox.RELEASES_DIR / version))
    assert found["package_file"].startswith(str(installed) + "/")
    assert found["datasource_list"] == ["CernVM", "None"]
    assert found["datasource_pkg_list"] == ["cloudinit_cernvm"]
    cernvm = [d for d in found["local_datasources"] if d["class"] == "DataSourceCernVM"]
    assert cernvm, found["local_datasources"]
    assert cernvm[0]["dsname"] == "CernVM"
    assert cernvm[0]["file"].startswith(str(installed / sitelib.lstrip("/")) + "/")
    (shim,) = found["handlers"]
    assert shim["file"] == str(installed / SHIM)
    assert "text/amiconfig" in shim["types"]


def test_command_runs_from_installed_paths(installed, sitelib, tmp_path):
    script = (installed / COMMAND).read_text()
    assert script.startswith("#!/usr/bin/python3")
    # the installer's launcher, generated from the package's entry point
    assert "from cloudinit_cernvm.cli import main" in script
    entry_points = installed / sitelib.lstrip("/") / f"cloudinit_cernvm-{_version()}.dist-info"
    assert "cernvm-context = cloudinit_cernvm.cli:main" in (
        entry_points / "entry_points.txt").read_text()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(
            [str(installed / sitelib.lstrip("/")), sysconfig.get_paths()["purelib"]]
        ),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    proc = _run(sys.executable, "-S", str(installed / COMMAND), "--help", env=env, cwd=tmp_path)
    assert "convert" in proc.stdout
    proc = _run(sys.executable, "-S", str(installed / COMMAND), "--version", env=env, cwd=tmp_path)
    assert proc.stdout == f"cernvm-context {_version()}\n"


def _verbs() -> list[str]:
    from cloudinit_cernvm import cli

    parser = cli.build_parser("make-iso")
    (action,) = [a for a in parser._actions if a.choices and a.dest == "verb"]
    return list(action.choices)


def test_manual_page_describes_every_verb_and_renders_cleanly(installed):
    page = gzip.decompress((installed / MANPAGE).read_bytes()).decode()
    assert page.startswith(".TH CERNVM-CONTEXT 1 ")
    assert f'"cloudinit-cernvm {_version()}"' in page
    assert re.findall(r"^\.SS (\S+)$", page, re.M) == [v.replace("-", "\\-") for v in _verbs()]
    proc = subprocess.run(
        ["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", str(installed / MANPAGE)],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80"),
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "cernvm-context convert" in proc.stdout


def test_installed_bash_completion_offers_every_verb(installed):
    script = (
        f"source {shlex.quote(str(installed / COMPLETION))}\n"
        "complete -p cernvm-context\n"
        "COMP_WORDS=(cernvm-context ''); COMP_CWORD=1; _cernvm_context\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    proc = _run("bash", "--norc", "--noprofile", "-c", script)
    first, *verbs = proc.stdout.splitlines()
    assert first == "complete -F _cernvm_context cernvm-context"
    assert verbs == _verbs()
    _run("shellcheck", "-s", "bash", str(installed / COMPLETION))


def test_source_rpm_carries_the_version_and_the_bare_spec_builds_none(builds, tmp_path):
    subprocess.run(f"rpm2cpio '{builds['1'].srpm}' | cpio -idm --quiet '*.spec'",
                   shell=True, cwd=tmp_path, check=True)
    (spec,) = tmp_path.glob("*.spec")
    # tools/build-rpm wrote cloudinit_cernvm.__version__ at its top: the
    # source RPM rebuilds with its own version
    assert spec.read_text().split("\n", 1)[0] == f"%global upstream_version {_version()}"
    assert _query(builds["1"].srpm, "--qf", "%{VERSION}\n") == [_version()]
    # The spec as it lies names version 0, and %prep refuses sources that
    # are another version instead of packaging them under a wrong one.
    top = tmp_path / "top"
    (top / "SOURCES").mkdir(parents=True)
    src = tmp_path / "cloudinit-cernvm-0" / "cloudinit_cernvm"
    src.mkdir(parents=True)
    shutil.copy(TOP / "cloudinit_cernvm/__init__.py", src)
    with tarfile.open(top / "SOURCES/cloudinit-cernvm-0.tar.gz", "w:gz") as tar:
        tar.add(src.parent, arcname="cloudinit-cernvm-0")
    proc = subprocess.run(["rpmbuild", "-bp", "--nodeps", "--define", f"_topdir {top}", str(SPEC)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f"the sources are version {_version()}, the spec 0" in proc.stderr, proc.stderr


def test_shim_left_without_its_package_handles_nothing(installed, sitelib, tmp_path):
    # A copy of the shim outlives the package (e.g. restored by hand).
    bare = tmp_path / "bare"
    (bare / SHIM).parent.mkdir(parents=True)
    shutil.copy(installed / SHIM, bare / SHIM)
    found = _probe(bare, sitelib, _versions()[-1], tmp_path)
    assert found["package_file"] is None
    assert found["handlers"] == [{"file": str(bare / SHIM), "types": []}]


def test_upgrade_keeps_edited_config_and_erase_leaves_no_datasource(
    builds, installed, sitelib, tmp_path
):
    cfg = installed / CFG
    edited = cfg.read_text() + "# site setting kept across upgrades\n"
    cfg.write_text(edited)

    _rpm_root(installed, "-U", "--nodeps", "--noscripts", str(builds["2"].rpm))
    assert _rpm_root(installed, "-q", "cloudinit-cernvm").stdout.strip().endswith("-2.noarch")
    assert cfg.read_text() == edited
    assert not cfg.with_name(cfg.name + ".rpmnew").exists()

    _rpm_root(installed, "-e", "--nodeps", "--noscripts", "cloudinit-cernvm")
    # The edit is saved where cloud-init does not read (*.cfg only)...
    assert _files_under(installed) == {CFG + ".rpmsave"}
    assert cfg.with_name(cfg.name + ".rpmsave").read_text() == edited
    # ...so cloud-init configures no datasource that is gone.
    found = _probe(installed, sitelib, _versions()[-1], tmp_path)
    assert found["datasource_list"] is None and found["datasource_pkg_list"] is None
    assert found["local_datasources"] == [] and found["handlers"] == []


def test_erase_of_an_unedited_install_removes_every_file(builds, installed):
    assert CFG in _files_under(installed)
    _rpm_root(installed, "-e", "--nodeps", "--noscripts", "cloudinit-cernvm")
    assert _files_under(installed) == set()


# --- an upgrade from the earlier release ------------------------------------


@pytest.fixture(scope="session")
def earlier_build(tmp_path_factory) -> Build:
    """The RPM of the earlier release (``v0.1.0``, from git history), built by
    that release's own tools/build-rpm, as release 1 of its version."""
    def build() -> dict:
        tree = earlier_release.extract(out / "tree")
        return _saved(_build_with(tree / "tools/build-rpm", out / "dist", "1",
                                  "--worktree", "--nocheck"))

    out = _shared(tmp_path_factory) / "rpm-earlier"
    saved = _once(out, build)
    return Build(Path(saved["rpm"]), Path(saved["srpm"]), saved["log"])


def _build_with(tool: Path, out: Path, release: str, *flags: str) -> Build:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DIST=str(out), RPM_RELEASE=release)
    proc = _run(str(tool), *flags, env=env)
    (rpm,) = out.glob("*.noarch.rpm")
    (srpm,) = out.glob("*.src.rpm")
    return Build(rpm, srpm, proc.stdout + proc.stderr)


def _rpm_with_scripts(root: Path, *args: str) -> str:
    """rpm on ROOT with its scriptlets run, as on a machine: ROOT is the upper
    layer of an overlay of this system's ``/`` (private mount namespace), so
    that a scriptlet finds the shell and tools of a real system while every
    write lands in ROOT. Returns what rpm printed."""
    script = "\n".join([
        "set -eu",
        'root=$1; shift; ns=$(mktemp -d)',
        'mount -t tmpfs -o mode=0755 rpmroot "$ns"',  # upper may not be under lower
        'mkdir "$ns/upper" "$ns/work" "$ns/merged"',
        'cp -a "$root/." "$ns/upper/"',
        'mount -t overlay overlay -o "lowerdir=/,upperdir=$ns/upper,workdir=$ns/work"'
        ' "$ns/merged"',
        'for d in proc dev; do mount --rbind "/$d" "$ns/merged/$d"; done',
        'mount -t tmpfs tmp "$ns/merged/tmp"',
        'rc=0; rpm --root "$ns/merged" --dbpath /var/lib/rpm "$@" || rc=$?',
        'umount -R "$ns/merged"',
        'rm -rf "$root"; mkdir "$root"; cp -a "$ns/upper/." "$root/"',
        'exit $rc',
    ])
    proc = _run("unshare", "--mount", "--propagation", "private", "bash", "-c", script,
                "rpm-with-scripts", str(root), *args)
    return proc.stdout + proc.stderr


def _package_files(rpm_file: Path) -> set[str]:
    """The files and links (no directories) an RPM installs, without the leading /."""
    found = set()
    for line in _query(rpm_file, "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]"):
        perms, name = line.split(" ", 1)
        if not perms.startswith("d"):
            found.add(name.lstrip("/"))
    return found


@pytest.mark.parametrize("version", [_versions()[0], _versions()[-1]])
def test_upgrade_from_the_earlier_release_keeps_the_site_config_and_reads_its_cache(
    version, earlier_build, builds, sitelib, tmp_path
):
    """v0.1.0's RPM installed, a site setting added to its config, the local
    stage run; then ``rpm -U`` to this tree's RPM (scriptlets run) and the
    next stages: the edited config is kept and used, the new files are the
    package's own and intact, and the cache of the earlier datasource is read."""
    root = tmp_path / "root"
    root.mkdir()
    scripts = {b.rpm.name: _run("rpm", "-qp", "--scripts", str(b.rpm)).stdout
               for b in (earlier_build, builds["2"])}
    out = _rpm_with_scripts(root, "-i", "--nodeps", str(earlier_build.rpm))
    assert "warning" not in out.lower() and "error" not in out.lower(), out
    assert _rpm_root(root, "-q", "cloudinit-cernvm").stdout.strip().endswith("-1.noarch")
    cfg = root / CFG
    edited = cfg.read_text() + ("# site setting kept across upgrades\n"
                                "datasource:\n  CernVM:\n    seed_dir: /mnt/.rw/site-seed\n")
    cfg.write_text(edited)

    # the earlier package's datasource, found by real cloud-init in the local stage
    code = root / sitelib.lstrip("/")
    machine = upgrades.machine_of(tmp_path, "machine", version, code, cernvm_config=cfg,
                                  seed_dir="/mnt/.rw/site-seed")
    handlers = machine.cloud_dir / "handlers"
    handlers.mkdir(parents=True)
    shutil.copy(root / SHIM, handlers / Path(SHIM).name)
    local = machine.run(sandbox.BOOT_STAGES[0])
    assert local.ok and "Traceback" not in machine.log, machine.log[-3000:]
    assert (machine.instance_dir / "obj.pkl").exists(), "the earlier package cached nothing"

    out = _rpm_with_scripts(root, "-U", "--nodeps", str(builds["2"].rpm))
    assert "warning" not in out.lower() and "error" not in out.lower(), out
    assert _rpm_root(root, "-q", "cloudinit-cernvm").stdout.strip().endswith("-2.noarch")
    # %config(noreplace): the edit kept, no .rpmnew beside it
    assert cfg.read_text() == edited
    assert not cfg.with_name(cfg.name + ".rpmnew").exists()
    # every file is the new package's, as packaged, but the edited config;
    # nothing of the earlier package (or of a scriptlet) left beside them
    verify = subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-V",
                             "--nodeps", "cloudinit-cernvm"],
                            capture_output=True, text=True, check=False)
    changed = [ln for ln in verify.stdout.splitlines() if ln.strip()]
    assert len(changed) == 1 and re.match(r"^S\.5\S* +c /" + re.escape(CFG) + "$", changed[0]), (
        verify.stdout + verify.stderr)
    assert _files_under(root) == _package_files(builds["2"].rpm), scripts
    assert (code / "cloudinit_cernvm/DataSourceCernVM.py").read_bytes() == (
        TOP / "cloudinit_cernvm/DataSourceCernVM.py").read_bytes()

    # the upgraded package, with the kept config, reads the earlier one's cache
    shutil.copy(cfg, machine.dir / "etc-cloud" / "cloud.cfg.d" / "90_cernvm.cfg")
    shutil.copy(root / SHIM, handlers / Path(SHIM).name)
    mark = len(machine.log)
    result = machine.run(*sandbox.BOOT_STAGES[1:])  # the same boot: /run kept
    assert "restored from cache" in machine.log[mark:].split("running 'modules")[0], (
        machine.log[mark:])
    upgrades.assert_whole(machine, result, upgrades.FIRST_BOOT)
    upgrades.assert_whole(machine, machine.boot(), {**upgrades.FIRST_BOOT, "bootcmd": 2})
