"""Build the shared Lambda layer in ``.build/layer/python/`` without Docker.

Run it as ``python -m infra.build_layer`` (``make layer`` does). Two phases:

1. **Runtime dependencies**: exactly what ``layers/requirements.lock`` pins, each wheel checked against its
   hash, for the Lambda platform (Python 3.13 on arm64), with ``pip install --require-hashes --no-deps
   --target --platform``. Nothing is compiled here, so no Docker is needed. This phase is skipped while a
   stamp holds the hash of the same lock and pip arguments.

The lock is the resolution of the ``[project].dependencies`` of ``pyproject.toml`` less what the Lambda
runtime ships (boto3, botocore, s3transfer), made by ``python -m infra.build_layer --lock`` (pip's resolver,
``pip install --dry-run --report``, for the Lambda platform). ``layers/constraints.txt`` holds the same pins
without hashes: ``make`` installs the test venv under it, so the versions CI tests are the versions deployed
(the hashes are of the arm64 wheels, which a laptop's venv does not install). tests/infra checks that both
files match pyproject.toml, and that the venv holds the locked versions.
2. **The interlock package** is always copied afresh from ``layers/interlock/interlock``, less the code
   that only runs on a laptop (the embedded local cloud, the CLI and samples).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
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


class LayerBuildError(RuntimeError):
    pass


def _say(message: str) -> None:
    print(f"[layer] {message}", flush=True)


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


def requirements_hash(reqs: list[str]) -> str:
    material = json.dumps({"requirements": reqs, "pip": PIP_TARGET_ARGS, "prune": RUNTIME_PROVIDED,
                           "lock": LOCK.read_text(encoding="utf-8") if LOCK.is_file() else ""})
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


def install_dependencies(reqs: list[str], *, force: bool = False) -> bool:
    """Install ``reqs`` for the Lambda platform into the layer; False when the cached install is current."""
    digest = requirements_hash(reqs)
    if not force and SITE_DIR.is_dir() and STAMP.is_file() and STAMP.read_text().strip() == digest:
        _say(f"dependencies: cached ({digest[:12]}), {LOCK.name} and the requirements unchanged")
        return False
    _say(f"dependencies: installing {LOCK.relative_to(REPO_ROOT)} ({len(read_pins())} pinned) for "
         f"python{PYTHON_VERSION} {PLATFORM}")
    started = time.monotonic()
    if SITE_DIR.exists():
        shutil.rmtree(SITE_DIR)
    STAMP.unlink(missing_ok=True)
    SITE_DIR.mkdir(parents=True)
    if not LOCK.is_file():
        raise LayerBuildError(f"{LOCK.relative_to(REPO_ROOT)} is missing: run python -m infra.build_layer --lock")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--require-hashes", "--no-deps", "--target", str(SITE_DIR), *PIP_TARGET_ARGS, "-r", str(LOCK)]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        shutil.rmtree(SITE_DIR, ignore_errors=True)
        raise LayerBuildError(
            f"pip could not install the layer dependencies for {PLATFORM} / python{PYTHON_VERSION} "
            f"(exit {result.returncode}). A dependency without a binary wheel for that platform cannot go "
            f"in this layer.\n{result.stderr.strip()}"
        )
    pruned = _prune_runtime_provided(SITE_DIR)
    if pruned:
        _say(f"dependencies: pruned what the Lambda runtime provides: {', '.join(sorted(pruned))}")
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.write_text(digest + "\n")
    _say(f"dependencies: done in {time.monotonic() - started:.1f}s")
    return True


def _ignore_local_only(directory: str, names: list[str]) -> set[str]:
    ignored = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
    if Path(directory).resolve() == PACKAGE_SRC.resolve():
        ignored |= {n for n in names if n in LOCAL_ONLY}
    return ignored


def copy_package() -> Path:
    """Copy the interlock package into the layer, always afresh, without its local-only parts."""
    if not (PACKAGE_SRC / "__init__.py").is_file():
        raise LayerBuildError(f"the interlock package is missing at {PACKAGE_SRC}")
    dest = SITE_DIR / "interlock"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PACKAGE_SRC, dest, ignore=_ignore_local_only)
    files = sum(1 for p in dest.rglob("*") if p.is_file())
    _say(f"package: copied interlock ({files} files, without {', '.join(LOCAL_ONLY)})")
    return dest


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def build(*, force: bool = False) -> Path:
    """Build (or refresh) the layer and return its asset directory, ``.build/layer``."""
    started = time.monotonic()
    _say(f"building {LAYER_DIR.relative_to(REPO_ROOT)}")
    install_dependencies(requirements(), force=force)
    copy_package()
    _say(f"ready: {_size_mb(LAYER_DIR):.1f} MB unzipped in {time.monotonic() - started:.1f}s")
    return LAYER_DIR


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if "--lock" in args:
            pins = resolve_lock(requirements())
            write_lock(pins)
            _say(f"locked {len(pins)} distributions in {LOCK.relative_to(REPO_ROOT)} and "
                 f"{CONSTRAINTS.relative_to(REPO_ROOT)}")
            return 0
        build(force="--force" in args)
    except LayerBuildError as exc:
        print(f"[layer] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
