"""Build the shared Lambda layer in ``.build/layer/python/`` without Docker.

Run it as ``python -m infra.build_layer`` (``make layer`` does). Three phases:

1. **Runtime dependencies**: exactly what ``layers/requirements.lock`` pins, each wheel checked against its
   hash, for the Lambda platform (Python 3.13 on arm64), with ``pip install --require-hashes --no-deps
   --target --platform``. Nothing is built from source, so no Docker is needed. This phase (with the
   compilation of what it installed, phase 3) is skipped while a stamp holds the hash of the same lock, pip
   arguments and bytecode settings.

The lock is the resolution of the ``[project].dependencies`` of ``pyproject.toml`` less what the Lambda
runtime ships (boto3, botocore, s3transfer), made by ``python -m infra.build_layer --lock`` (pip's resolver,
``pip install --dry-run --report``, for the Lambda platform). ``layers/constraints.txt`` holds the same pins
without hashes: ``make`` installs the test venv under it, so the versions CI tests are the versions deployed
(the hashes are of the arm64 wheels, which a laptop's venv does not install). tests/infra checks that both
files match pyproject.toml, and that the venv holds the locked versions.
2. **The interlock package** is always copied afresh from ``layers/interlock/interlock``, less the code
   that only runs on a laptop (the embedded local cloud, the CLI, and the samples, its own and the workflow
   packages').
3. **Bytecode**: every ``.py`` of the layer is compiled for the runtime's Python (3.13) with
   ``compileall --invalidation-mode unchecked-hash``. Lambda's ``/opt`` is read-only, so a layer without
   ``.pyc`` files makes every cold start compile pydantic, Powertools and Interlock from source, and never
   keep the result. Timestamp-based ``.pyc`` files (pip's and compileall's default) would not help either:
   they hold the source's mtime, and the asset zip that CDK uploads stores every file with a fixed date
   (1980-01-01), so on Lambda each ``.pyc`` would look stale and be ignored. A hash-based ``.pyc`` holds a
   hash of its source instead; *unchecked* means the interpreter does not even read the source to compare
   (a layer version never changes, and this build recompiles whatever it copies). The compile runs with
   ``PYTHONHASHSEED=0`` and records ``/opt/python/...`` as each file's path, so the same sources give the
   same bytes wherever they are built (CDK's asset hash, and so the layer version, only change with the
   code). Bytecode needs a 3.13 interpreter: see :func:`find_runtime_python` for where it is looked for,
   and docs/cold-start.md. Without one the build stops, unless ``INTERLOCK_LAYER_ALLOW_UNCOMPILED=1``
   (``make synth``, for a template to look at) lets it build an uncompiled layer, with a warning and
   ``.build/layer.uncompiled`` saying so.

``benchmarks/cold_start.py`` builds a twin of this layer for the machine it runs on (:data:`HOST_TWIN`, the
same pins and steps for the host's platform) to measure the layer as built.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = REPO_ROOT / "pyproject.toml"
LOCK = REPO_ROOT / "layers" / "requirements.lock"
CONSTRAINTS = REPO_ROOT / "layers" / "constraints.txt"
PACKAGE_SRC = REPO_ROOT / "layers" / "interlock" / "interlock"
BUILD_DIR = REPO_ROOT / ".build"
LAYER_DIR = BUILD_DIR / "layer"  # the layer asset: Lambda unpacks it to /opt
SITE_DIR = LAYER_DIR / "python"  # /opt/python is on the runtime's sys.path
STAMP = BUILD_DIR / "layer-deps.stamp"  # outside the asset, so it never ships

# The Lambda runtime this layer targets; infra/constructs/functions.py uses the same runtime.
PYTHON_VERSION = "3.13"
PLATFORM = "manylinux2014_aarch64"
PIP_TARGET_ARGS = (
    "--platform", PLATFORM,
    "--implementation", "cp",
    "--python-version", PYTHON_VERSION,
    "--only-binary=:all:",
)
# Distributions the Lambda Python runtime provides. boto3 is left out of the requirement list; the other
# two arrive through aws-xray-sdk's dependency on botocore and are pruned after the install (together
# they are ~25 MB zipped, and the runtime's copies are the ones AWS keeps patched).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Local-only code in the interlock package: never shipped to Lambda.
LOCAL_ONLY = ("local", "cli.py", "samples")
# ...and in each workflow package (interlock/workflows/<name>/): its samples, which only ``interlock send`` reads.
WORKFLOW_LOCAL_ONLY = ("samples",)

# Bytecode (phase 3). The interpreter that compiles it, if not found where find_runtime_python looks:
LAYER_PYTHON_ENV = "INTERLOCK_LAYER_PYTHON"
# Set to 1 to build a layer without bytecode when no 3.13 interpreter is found (make synth does; never deploy it).
ALLOW_UNCOMPILED_ENV = "INTERLOCK_LAYER_ALLOW_UNCOMPILED"
# Hash-based pycs stay valid whatever the files' dates (the asset zip stores 1980-01-01); unchecked: the
# interpreter trusts them without reading the source (the layer is immutable once published).
INVALIDATION_MODE = "unchecked-hash"
PYC_FLAGS = 0b01  # PEP 552: hash-based, check_source off
RUNTIME_SITE = "/opt/python"  # where Lambda unpacks the layer's python/: the path the bytecode records
CACHE_TAG = "cpython-" + PYTHON_VERSION.replace(".", "")  # the .pyc names CPython 3.13 looks for


class LayerBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class LayerTarget:
    """Where a layer is built, and for which platform."""

    name: str
    layer_dir: Path
    stamp: Path
    pip_args: tuple[str, ...]
    # The lock's hashes are those of the Lambda platform's wheels: a twin for another platform installs the
    # same pins (layers/constraints.txt) without them.
    verify_hashes: bool

    @property
    def site_dir(self) -> Path:
        return self.layer_dir / "python"

    @property
    def uncompiled_marker(self) -> Path:
        """Present while the layer was built without bytecode (outside the asset, like the stamp)."""
        return self.layer_dir.with_name(self.layer_dir.name + ".uncompiled")


LAMBDA = LayerTarget("the Lambda layer", LAYER_DIR, STAMP, PIP_TARGET_ARGS, verify_hashes=True)


def host_twin(root: Path = BUILD_DIR / "bench") -> LayerTarget:
    """The same layer for the machine this runs on (same pins, same steps), which its Python can import:
    what ``benchmarks/cold_start.py`` measures, since the Lambda layer's binary wheels are for arm64."""
    if not sys.platform.startswith("linux"):
        raise LayerBuildError(f"a twin of the layer is built for Linux hosts only (this is {sys.platform}): "
                              "the Lambda layer holds manylinux wheels")
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    args = ("--platform", f"manylinux2014_{machine}", *PIP_TARGET_ARGS[2:])
    return LayerTarget("the host twin of the layer", root / "layer", root / "layer-deps.stamp", args,
                       verify_hashes=False)


def _say(message: str) -> None:
    print(f"[layer] {message}", flush=True)


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _warn(message: str) -> None:
    bar = "!" * 100
    print(f"{bar}\n[layer] WARNING: {message}\n{bar}", file=sys.stderr, flush=True)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise LayerBuildError(f"cannot read the project name of requirement {requirement!r}")
    return _canonical(match.group(1))


def requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The runtime requirement list of the project, without what the Lambda runtime provides."""
    with pyproject.open("rb") as fh:
        deps: list[str] = tomllib.load(fh)["project"]["dependencies"]
    provided = {_canonical(n) for n in RUNTIME_PROVIDED}
    return sorted(d for d in deps if _project_name(d) not in provided)


# -- the interpreter that compiles the bytecode ----------------------------------------------------------------


@dataclass(frozen=True)
class RuntimePython:
    """A CPython 3.13 found on this machine: it compiles the layer's bytecode (and runs the benchmark)."""

    executable: str
    version: str
    magic: str  # importlib.util.MAGIC_NUMBER, hex: the same for every 3.13.x release
    found_by: str

    def bytecode_settings(self) -> dict[str, str]:
        """What the compiled layer depends on (in the stamp): not the path or patch release of the interpreter."""
        return {"magic": self.magic, "mode": INVALIDATION_MODE, "prefix": RUNTIME_SITE, "tag": CACHE_TAG}


_PROBE = ("import importlib.util, json, sys, sysconfig; print(json.dumps({'tag': sys.implementation.cache_tag, "
          "'version': '.'.join(map(str, sys.version_info[:3])), 'magic': importlib.util.MAGIC_NUMBER.hex(), "
          "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))")


def _probe_python(executable: str, found_by: str) -> tuple[RuntimePython | None, str]:
    """The interpreter at ``executable`` if it is a CPython 3.13 that runs, else None and why not."""
    try:
        out = subprocess.run([executable, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60,  # noqa: S603
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"does not run ({type(exc).__name__})"
    if out.returncode != 0:  # e.g. a pyenv shim for a version that is not selected
        return None, f"does not run (exit {out.returncode})"
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, "answered something unexpected"
    if info["tag"] != CACHE_TAG or info["free_threaded"]:
        kind = "free-threaded " if info["free_threaded"] else ""
        return None, f"is {kind}Python {info['version']} ({info['tag']}), not CPython {PYTHON_VERSION}"
    return RuntimePython(executable, info["version"], info["magic"], found_by), ""


def _version_key(executable: Path) -> tuple[int, ...]:
    match = re.fullmatch(rf"{re.escape(PYTHON_VERSION)}\.(\d+)", executable.parents[1].name)
    return (int(match.group(1)),) if match else (-1,)


def _candidates(environ: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """Where a 3.13 interpreter is looked for, in order (after INTERLOCK_LAYER_PYTHON)."""
    yield sys.executable, "the interpreter running this build"
    exe = f"python{PYTHON_VERSION}"
    on_path = shutil.which(exe, path=environ.get("PATH", os.defpath))
    yield (on_path or exe), f"{exe} on PATH"
    pyenv = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    uv = Path(environ.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local" / "share" / "uv" / "python")
    for where, pattern, label in ((pyenv, f"{PYTHON_VERSION}.*/bin/{exe}", "pyenv"),
                                  (uv, f"cpython-{PYTHON_VERSION}.*/bin/{exe}", "uv")):
        found = sorted(where.glob(pattern), key=_version_key, reverse=True) if where.is_dir() else []
        if not found:
            yield str(where / pattern), f"{label} (none installed)"
        for path in found:
            yield str(path), label


def find_runtime_python(environ: Mapping[str, str] | None = None) -> tuple[RuntimePython | None, list[str]]:
    """The CPython 3.13 to compile the layer with, and what was tried. In order: ``$INTERLOCK_LAYER_PYTHON``
    (if set, it must be one: no other is tried), the interpreter running the build, ``python3.13`` on
    ``PATH`` (a pyenv shim counts only if it runs), pyenv's ``versions/3.13.*`` (``$PYENV_ROOT`` or
    ``~/.pyenv``, newest first), uv's managed ``cpython-3.13.*``."""
    env = os.environ if environ is None else environ
    explicit = env.get(LAYER_PYTHON_ENV, "").strip()
    if explicit:
        found, why = _probe_python(explicit, LAYER_PYTHON_ENV)
        if found is None:
            raise LayerBuildError(f"{LAYER_PYTHON_ENV}={explicit} {why}: it must name a CPython {PYTHON_VERSION} "
                                  "interpreter (the Lambda runtime's), or be unset")
        return found, [f"{LAYER_PYTHON_ENV}={explicit}"]
    tried = [f"{LAYER_PYTHON_ENV} (unset)"]
    for executable, found_by in _candidates(env):
        if "none installed" in found_by:
            tried.append(f"{found_by}: {executable}")
            continue
        found, why = _probe_python(executable, found_by)
        if found is not None:
            return found, tried
        tried.append(f"{found_by}: {executable} {why}")
    return None, tried


def _allowed_uncompiled(environ: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(ALLOW_UNCOMPILED_ENV, "")
    return value.strip().lower() in {"1", "true", "yes"}


def runtime_python(allow_uncompiled: bool | None = None) -> RuntimePython | None:
    """The interpreter for the bytecode; None (with a loud warning) only if none is found and an uncompiled
    layer is allowed (``allow_uncompiled``, by default ``$INTERLOCK_LAYER_ALLOW_UNCOMPILED``)."""
    found, tried = find_runtime_python()
    if found is not None:
        return found
    allowed = _allowed_uncompiled() if allow_uncompiled is None else allow_uncompiled
    missing = (f"no CPython {PYTHON_VERSION} interpreter to compile the layer's bytecode with. Lambda runs "
               f"python{PYTHON_VERSION} and its /opt is read-only: a layer without .pyc files compiles every "
               f"module from source on every cold start (about twice the floor for the ingest, "
               f"docs/cold-start.md). Looked for: " + "; ".join(tried) + ".")
    if not allowed:
        raise LayerBuildError(f"{missing}\nInstall Python {PYTHON_VERSION} (e.g. `pyenv install {PYTHON_VERSION}`) "
                              f"or set {LAYER_PYTHON_ENV}=/path/to/python{PYTHON_VERSION}. Only for a synthesis "
                              f"that will not be deployed, {ALLOW_UNCOMPILED_ENV}=1 builds it without bytecode.")
    _warn(f"{missing}\n{ALLOW_UNCOMPILED_ENV} is set: building the layer WITHOUT BYTECODE. Do not deploy it "
          "(make deploy and a bare cdk deploy rebuild it, and refuse without the interpreter).")
    return None


def requirements_hash(reqs: list[str], target: LayerTarget = LAMBDA, bytecode: RuntimePython | None = None) -> str:
    source = LOCK if target.verify_hashes else CONSTRAINTS
    material = json.dumps({"requirements": reqs, "pip": target.pip_args, "hashes": target.verify_hashes,
                           "prune": RUNTIME_PROVIDED,
                           "lock": source.read_text(encoding="utf-8") if source.is_file() else "",
                           "bytecode": bytecode.bytecode_settings() if bytecode else None})
    return hashlib.sha256(material.encode()).hexdigest()


LOCK_HEADER = """\
# The Lambda layer's dependencies, pinned with the hash of each arm64 / python3.13 wheel: what
# infra/build_layer.py installs (pip --require-hashes --no-deps). Generated from pyproject.toml's
# [project].dependencies (less boto3, botocore and s3transfer, which the Lambda runtime provides) by
#   python -m infra.build_layer --lock
# Do not edit by hand; regenerate after changing the dependencies, then `make setup` installs the same
# versions in the venv (layers/constraints.txt).
"""
CONSTRAINTS_HEADER = """\
# The pins of layers/requirements.lock without their (arm64) hashes: the venv `make` installs, so tests run
# on the versions that deploy. Generated with the lock by `python -m infra.build_layer --lock`.
"""


def resolve_lock(reqs: list[str]) -> list[tuple[str, str, str]]:
    """(name, version, sha256) of every distribution pip resolves ``reqs`` to for the Lambda platform, less what
    the runtime provides."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--dry-run",
               "--ignore-installed", "--report", str(report), *PIP_TARGET_ARGS, *reqs]
        result = subprocess.run(cmd, check=False, capture_output=True, text=True)  # noqa: S603 - fixed argv
        if result.returncode != 0:
            raise LayerBuildError(f"pip could not resolve the layer dependencies (exit {result.returncode}):\n"
                                  f"{result.stderr.strip()}")
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    provided = {_canonical(n) for n in RUNTIME_PROVIDED}
    pins = []
    for item in installs:
        name = _canonical(item["metadata"]["name"])
        if name in provided:
            continue
        digest = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        if not digest:
            raise LayerBuildError(f"pip reported no sha256 for {name}: cannot pin it with a hash")
        pins.append((name, item["metadata"]["version"], digest))
    return sorted(pins)


def write_lock(pins: list[tuple[str, str, str]]) -> None:
    LOCK.write_text(LOCK_HEADER + "".join(f"{n}=={v} \\\n    --hash=sha256:{h}\n" for n, v, h in pins),
                    encoding="utf-8")
    CONSTRAINTS.write_text(CONSTRAINTS_HEADER + "".join(f"{n}=={v}\n" for n, v, _ in pins), encoding="utf-8")


def read_pins(path: Path = LOCK) -> dict[str, str]:
    """Canonical name -> pinned version, from the lock (or the constraints)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _prune_runtime_provided(site: Path) -> list[str]:
    pruned = []
    scripts = site / "bin"  # console scripts with this machine's interpreter in their shebang
    if scripts.is_dir():
        shutil.rmtree(scripts)
    for name in RUNTIME_PROVIDED:
        for path in [site / name, *site.glob(f"{name}-*.dist-info")]:
            if path.exists():
                shutil.rmtree(path)
                pruned.append(path.name)
    return pruned



# -- bytecode ----------------------------------------------------------------------------------------------------


def compile_bytecode(python: RuntimePython, root: Path, site: Path, prefix: str = RUNTIME_SITE) -> int:
    """Compile every ``.py`` under ``root`` (inside the layer's ``site``) for the runtime: unchecked hash-based
    ``.pyc`` files recording ``<prefix>/<path in site>`` (``/opt/python/...``), byte for byte the same on every
    build. Returns how many ``.py`` files there are."""
    root, site = root.resolve(), site.resolve()
    count = sum(1 for _ in root.rglob("*.py"))
    # compileall's own -s/-p: strip the build directory from each recorded path and put /opt/python instead.
    cmd = [python.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", INVALIDATION_MODE,
           "-s", str(site), "-p", prefix, str(root)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"  # sets and frozensets of strings are marshalled in hash order
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        errors = (result.stdout + result.stderr).strip()
        raise LayerBuildError(f"python {python.version} could not compile {root.relative_to(site.parent)} "
                              f"(exit {result.returncode}); a file the runtime cannot compile cannot be imported "
                              f"there either:\n{errors[-4000:]}")
    return count


def pyc_path(source: Path) -> Path:
    """Where CPython 3.13 looks for the bytecode of ``source`` (``importlib.util.cache_from_source``'s answer
    on 3.13, whatever Python runs this)."""
    return source.parent / "__pycache__" / f"{source.stem}.{CACHE_TAG}.pyc"


def bytecode_problems(site: Path, python: RuntimePython) -> list[str]:
    """What keeps the runtime from using the bytecode of the layer at ``site``: a ``.py`` without its 3.13
    ``.pyc``, a ``.pyc`` for another Python or not unchecked-hash based, a ``.pyc`` without its ``.py``
    (stale: the runtime would never read it)."""
    problems = []
    magic = bytes.fromhex(python.magic)
    for source in sorted(site.rglob("*.py")):
        cached = pyc_path(source)
        if not cached.is_file():
            problems.append(f"{source.relative_to(site)}: no {CACHE_TAG} bytecode")
            continue
        with cached.open("rb") as fh:
            header = fh.read(8)
        if header[:4] != magic:
            problems.append(f"{cached.relative_to(site)}: bytecode of another Python")
        elif int.from_bytes(header[4:8], "little") != PYC_FLAGS:
            problems.append(f"{cached.relative_to(site)}: not an {INVALIDATION_MODE} .pyc")
    suffix = f".{CACHE_TAG}.pyc"
    for cached in sorted(site.rglob("__pycache__/*")):
        source = cached.parent.parent / f"{cached.name.removesuffix(suffix)}.py"
        if not cached.name.endswith(suffix) or not source.is_file():
            problems.append(f"{cached.relative_to(site)}: no source of that name (stale) or not {CACHE_TAG}")
    return problems


def check_bytecode(site: Path, python: RuntimePython) -> None:
    problems = bytecode_problems(site, python)
    if problems:
        shown = "\n  ".join(problems[:20])
        raise LayerBuildError(f"{len(problems)} bytecode problem(s) in {site} (python -m infra.build_layer "
                              f"--force rebuilds it from scratch):\n  {shown}")


# -- the build ---------------------------------------------------------------------------------------------------


def install_dependencies(reqs: list[str], *, force: bool = False, target: LayerTarget = LAMBDA,
                         bytecode: RuntimePython | str | None = "find") -> bool:
    """Install ``reqs`` for the target's platform into its layer and compile them (``bytecode``: the
    interpreter, None for no bytecode, ``"find"`` to look for it as :func:`build` does); False when the cached
    install is current."""
    python = runtime_python() if bytecode == "find" else bytecode
    assert python is None or isinstance(python, RuntimePython)
    digest = requirements_hash(reqs, target, python)
    site = target.site_dir
    if not force and site.is_dir() and target.stamp.is_file() and target.stamp.read_text().strip() == digest:
        _say(f"dependencies: cached ({digest[:12]}), {LOCK.name}, the requirements and the bytecode settings "
             "unchanged")
        return False
    platform_name = target.pip_args[target.pip_args.index("--platform") + 1]
    _say(f"dependencies: installing {LOCK.relative_to(REPO_ROOT)} ({len(read_pins())} pinned) for "
         f"python{PYTHON_VERSION} {platform_name} into {_shown(target.layer_dir)}")
    started = time.monotonic()
    if site.exists():
        shutil.rmtree(site)  # no file (or .pyc) of a former install survives
    target.stamp.unlink(missing_ok=True)
    site.mkdir(parents=True)
    if not LOCK.is_file():
        raise LayerBuildError(f"{LOCK.relative_to(REPO_ROOT)} is missing: run python -m infra.build_layer --lock")
    if target.verify_hashes:
        source = ["--require-hashes", "--no-deps", "-r", str(LOCK)]
    else:  # a twin for another platform: the same pins, whose wheels the lock has no hashes of
        source = ["--no-deps", "-r", str(CONSTRAINTS)]
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--target", str(site), *target.pip_args, *source]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        shutil.rmtree(site, ignore_errors=True)
        raise LayerBuildError(
            f"pip could not install the layer dependencies for {platform_name} / python{PYTHON_VERSION} "
            f"(exit {result.returncode}). A dependency without a binary wheel for that platform cannot go "
            f"in this layer.\n{result.stderr.strip()}"
        )
    pruned = _prune_runtime_provided(site)
    if pruned:
        _say(f"dependencies: pruned what the Lambda runtime provides: {', '.join(sorted(pruned))}")
    if python is not None:
        count = compile_bytecode(python, site, site)
        _say(f"dependencies: compiled {count} .py files")
    target.stamp.parent.mkdir(parents=True, exist_ok=True)
    target.stamp.write_text(digest + "\n")
    _say(f"dependencies: done in {time.monotonic() - started:.1f}s")
    return True


def _ignore_local_only(directory: str, names: list[str]) -> set[str]:
    ignored = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
    here = Path(directory).resolve()
    if here == PACKAGE_SRC.resolve():
        ignored |= {n for n in names if n in LOCAL_ONLY}
    elif here.parent == (PACKAGE_SRC / "workflows").resolve():
        ignored |= {n for n in names if n in WORKFLOW_LOCAL_ONLY}
    return ignored


def copy_package(target: LayerTarget = LAMBDA) -> Path:
    """Copy the interlock package into the layer, always afresh, without its local-only parts (or any
    ``.pyc``: a removed module leaves no bytecode behind)."""
    if not (PACKAGE_SRC / "__init__.py").is_file():
        raise LayerBuildError(f"the interlock package is missing at {PACKAGE_SRC}")
    dest = target.site_dir / "interlock"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PACKAGE_SRC, dest, ignore=_ignore_local_only)
    files = sum(1 for p in dest.rglob("*") if p.is_file())
    _say(f"package: copied interlock ({files} files, without {', '.join(LOCAL_ONLY)} and the workflows' "
         f"{', '.join(WORKFLOW_LOCAL_ONLY)})")
    return dest


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def build(*, force: bool = False, target: LayerTarget = LAMBDA, allow_uncompiled: bool | None = None,
          with_bytecode: bool = True) -> Path:
    """Build (or refresh) the layer and return its asset directory (``.build/layer`` for Lambda).
    ``with_bytecode=False`` builds it as it was before it shipped bytecode (the benchmark's comparison)."""
    started = time.monotonic()
    _say(f"building {_shown(target.layer_dir)} ({target.name})")
    python = runtime_python(allow_uncompiled) if with_bytecode else None
    if python is not None:
        _say(f"bytecode: python {python.version} ({python.executable}, found by {python.found_by}), "
             f"{INVALIDATION_MODE}")
    cached = not install_dependencies(requirements(), force=force, target=target, bytecode=python)
    package = copy_package(target)
    if python is None:
        why = (f"no CPython {PYTHON_VERSION} found and {ALLOW_UNCOMPILED_ENV} set" if with_bytecode
               else "asked for (with_bytecode=False)")
        target.uncompiled_marker.write_text(f"built without bytecode: {why}; do not deploy\n")
    else:
        _say(f"package: compiled {compile_bytecode(python, package, target.site_dir)} .py files")
        if cached and bytecode_problems(target.site_dir, python):  # a cached install whose .pyc were removed
            _say("dependencies: bytecode incomplete, compiling again")
            compile_bytecode(python, target.site_dir, target.site_dir)
        check_bytecode(target.site_dir, python)
        target.uncompiled_marker.unlink(missing_ok=True)
    _say(f"ready: {_size_mb(target.layer_dir):.1f} MB unzipped in {time.monotonic() - started:.1f}s"
         + ("" if python else " (WITHOUT BYTECODE: do not deploy)"))
    return target.layer_dir


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if "--lock" in args:
            pins = resolve_lock(requirements())
            write_lock(pins)
            _say(f"locked {len(pins)} distributions in {LOCK.relative_to(REPO_ROOT)} and "
                 f"{CONSTRAINTS.relative_to(REPO_ROOT)}")
            return 0
        build(force="--force" in args, allow_uncompiled=True if "--allow-uncompiled" in args else None)
    except LayerBuildError as exc:
        print(f"[layer] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
