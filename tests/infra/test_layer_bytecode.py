"""The layer ships bytecode the Lambda runtime (CPython 3.13, read-only /opt) actually uses.

Without it every cold start compiles pydantic, Powertools and Interlock from source (docs/cold-start.md). These
tests need a CPython 3.13 interpreter (``infra/build_layer.py`` says where it looks): without one they fail and
say so, as ``make layer`` and ``make deploy`` do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra import build_layer

ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z: the date CDK's asset zip gives every file


@pytest.fixture(scope="module")
def runtime_python() -> build_layer.RuntimePython:
    found, tried = build_layer.find_runtime_python()
    assert found is not None, (
        "no CPython 3.13 to test the layer's bytecode with (Lambda's runtime is python3.13); looked for: "
        + "; ".join(tried) + f". Install it or set {build_layer.LAYER_PYTHON_ENV}.")
    return found


def _run(python: build_layer.RuntimePython, code: str, *flags: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([python.executable, *flags, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _like_lambda(tree: Path) -> None:
    """Every file dated as the asset zip dates it, and nothing writable (which root ignores: hence -B)."""
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (ZIP_EPOCH, ZIP_EPOCH), follow_symlinks=False)
        path.chmod(path.stat().st_mode & ~0o222)


def _writable(tree: Path) -> None:
    for path in [tree, *tree.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


# Imports ``modules`` with ``site`` first on sys.path, as Lambda's /opt/python; the modules compiled from source
# (SourceFileLoader.source_to_code runs only when no usable .pyc is found) and where each module came from.
IMPORT_PROBE = """
import importlib, json, sys
from importlib.machinery import SourceFileLoader
sys.path.insert(0, {site!r})
compiled = []
_source_to_code = SourceFileLoader.source_to_code
def _counted(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
SourceFileLoader.source_to_code = _counted
files = {{name: importlib.import_module(name).__file__ for name in {modules!r}}}
print(json.dumps({{"compiled": compiled, "files": files, "dont_write_bytecode": sys.dont_write_bytecode,
                  "cached": [m.__spec__.cached for m in list(sys.modules.values())
                             if getattr(getattr(m, "__spec__", None), "cached", None)
                             and m.__spec__.origin.startswith({site!r})]}}))
"""


def test_given_the_built_layer_then_every_py_has_an_unchecked_hash_pyc_for_the_runtime(runtime_python) -> None:
    build_layer.build()
    site = build_layer.SITE_DIR
    sources = sorted(site.rglob("*.py"))
    assert len(sources) > 1000 and (site / "interlock" / "topology.py") in sources

    # Read by the runtime's own interpreter: the name it looks for (cache_from_source), the magic number it
    # accepts, the PEP 552 flags (hash-based, unchecked) and the path the code object records (/opt/python).
    report = _run(runtime_python, f"""
import importlib.util, json, marshal, pathlib
site = pathlib.Path({str(site)!r})
bad = []
for source in sorted(site.rglob("*.py")):
    cached = pathlib.Path(importlib.util.cache_from_source(str(source)))
    if not cached.is_file():
        bad.append(("missing", str(source.relative_to(site)))); continue
    data = cached.read_bytes()
    if data[:4] != importlib.util.MAGIC_NUMBER:
        bad.append(("magic", str(cached)))
    elif int.from_bytes(data[4:8], "little") != 0b01:
        bad.append(("flags", str(cached)))
    elif marshal.loads(data[16:]).co_filename != "/opt/python/" + source.relative_to(site).as_posix():
        bad.append(("co_filename", str(cached)))
stale = [str(p) for p in site.rglob("__pycache__/*")
         if not (p.parent.parent / (p.name.split(".")[0] + ".py")).is_file()]
sources = len(list(site.rglob("*.py")))
print(json.dumps({{"bad": bad[:20], "bad_count": len(bad), "stale": stale[:20], "sources": sources}}))
""")
    assert (report["bad_count"], report["bad"]) == (0, [])
    assert report["stale"] == []
    assert report["sources"] == len(sources)
    assert not build_layer.LAMBDA.uncompiled_marker.exists()


def test_given_the_layer_dated_as_zipped_and_read_only_when_imported_then_nothing_is_compiled(
    runtime_python, tmp_path
) -> None:
    # The pure-Python part of the arm64 layer imports on this machine too: a copy of it, dated and locked as
    # Lambda unpacks it, imported by the runtime's Python as Lambda runs it (no site-packages, no writes).
    build_layer.build()
    modules = ["httpx", "urllib3", "dateutil.parser", "jmespath", "typing_extensions", "anyio"]
    site = tmp_path / "opt" / "python"
    site.mkdir(parents=True)
    for name in ("httpx", "httpcore", "h11", "anyio", "sniffio", "idna", "certifi", "urllib3", "dateutil", "six.py",
                 "jmespath", "typing_extensions.py"):
        source = build_layer.SITE_DIR / name
        if source.is_dir():
            shutil.copytree(source, site / name)
        else:
            shutil.copy2(source, site / name)
            shutil.copytree(source.parent / "__pycache__", site / "__pycache__", dirs_exist_ok=True)
    _like_lambda(site)
    try:
        seen = _run(runtime_python, IMPORT_PROBE.format(site=str(site), modules=modules), "-I", "-S", "-B")
    finally:
        _writable(site)

    assert seen["dont_write_bytecode"] is True
    assert all(path.startswith(str(site)) for path in seen["files"].values()), seen["files"]
    assert len(seen["cached"]) > 50  # the whole import graph came from the copy...
    assert seen["compiled"] == []  # ...and not one module of it was compiled from source


def test_given_a_timestamp_pyc_dated_as_zipped_then_it_is_compiled_again_and_a_hash_pyc_is_not(
    runtime_python, tmp_path
) -> None:
    # Why the invalidation mode matters (and that the probe sees a compile when there is one): pip's and
    # compileall's default .pyc records the source's mtime, which the zip replaces.
    results = {}
    for mode in ("timestamp", "unchecked-hash"):
        site = tmp_path / mode
        (site / "pkg").mkdir(parents=True)
        (site / "pkg" / "__init__.py").write_text("from pkg import part\n")
        (site / "pkg" / "part.py").write_text("VALUE = {'a', 'b'}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        subprocess.run([runtime_python.executable, "-m", "compileall", "-q", "--invalidation-mode", mode, str(site)],
                       check=True, env=env)
        _like_lambda(site)
        try:
            results[mode] = _run(runtime_python, IMPORT_PROBE.format(site=str(site), modules=["pkg"]), "-I", "-S", "-B")
        finally:
            _writable(site)

    assert len(results["timestamp"]["compiled"]) == 2
    assert results["unchecked-hash"]["compiled"] == []


def test_given_a_small_tree_when_compiled_twice_elsewhere_then_the_bytes_are_the_same(runtime_python, tmp_path) -> None:
    # Same sources, same .pyc bytes wherever they are built: CDK's asset hash (the layer version) moves only with
    # the code. Sets of strings are marshalled in hash order, hence PYTHONHASHSEED=0 in compile_bytecode.
    trees = []
    for name in ("one", "two"):
        site = tmp_path / name / "python"
        (site / "pkg").mkdir(parents=True)
        (site / "pkg" / "__init__.py").write_text("NAMES = frozenset({'alpha', 'beta', 'gamma', 'delta'})\n")
        assert build_layer.compile_bytecode(runtime_python, site, site) == 1
        assert build_layer.bytecode_problems(site, runtime_python) == []
        trees.append((site / "pkg" / "__pycache__" / f"__init__.{build_layer.CACHE_TAG}.pyc").read_bytes())
    assert trees[0] == trees[1]


def test_given_stale_or_missing_bytecode_then_the_check_names_it(runtime_python, tmp_path) -> None:
    site = tmp_path / "python"
    (site / "pkg").mkdir(parents=True)
    for name in ("__init__", "kept", "removed"):
        (site / "pkg" / f"{name}.py").write_text("X = 1\n")
    build_layer.compile_bytecode(runtime_python, site, site)
    (site / "pkg" / "removed.py").unlink()  # its .pyc stays behind
    (site / "pkg" / "__pycache__" / f"kept.{build_layer.CACHE_TAG}.pyc").unlink()
    (site / "pkg" / "new.py").write_text("X = 2\n")

    problems = build_layer.bytecode_problems(site, runtime_python)

    assert sorted(p.split(":")[0] for p in problems) == [
        "pkg/__pycache__/removed.cpython-313.pyc", "pkg/kept.py", "pkg/new.py"]
    with pytest.raises(build_layer.LayerBuildError, match="3 bytecode problem"):
        build_layer.check_bytecode(site, runtime_python)


# -- finding the interpreter -------------------------------------------------------------------------------------


def _empty_machine(tmp_path: Path) -> dict[str, str]:
    """An environment where no 3.13 is to be found (the interpreter running the tests is the venv's 3.11)."""
    assert sys.version_info[:2] != (3, 13), "these tests assume the venv's Python is not the runtime's"
    return {"PATH": str(tmp_path / "bin"), "PYENV_ROOT": str(tmp_path / "pyenv"),
            "UV_PYTHON_INSTALL_DIR": str(tmp_path / "uv")}


def test_given_no_runtime_python_anywhere_then_the_build_refuses_and_says_where_it_looked(
    tmp_path, monkeypatch
) -> None:
    env = _empty_machine(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(build_layer.LAYER_PYTHON_ENV, raising=False)
    monkeypatch.delenv(build_layer.ALLOW_UNCOMPILED_ENV, raising=False)
    target = build_layer.LayerTarget("a test layer", tmp_path / "layer", tmp_path / "stamp",
                                     build_layer.PIP_TARGET_ARGS, verify_hashes=True)

    found, _ = build_layer.find_runtime_python()
    with pytest.raises(build_layer.LayerBuildError) as refused:
        build_layer.build(target=target)

    assert found is None
    message = str(refused.value)
    for place in (build_layer.LAYER_PYTHON_ENV, "the interpreter running this build", "python3.13 on PATH",
                  str(tmp_path / "pyenv"), str(tmp_path / "uv"), build_layer.ALLOW_UNCOMPILED_ENV):
        assert place in message, place
    assert not (tmp_path / "layer").exists()  # refused before pip installed anything


def test_given_no_runtime_python_and_uncompiled_allowed_then_it_warns_loudly(tmp_path, monkeypatch, capsys) -> None:
    for key, value in _empty_machine(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(build_layer.LAYER_PYTHON_ENV, raising=False)
    monkeypatch.setenv(build_layer.ALLOW_UNCOMPILED_ENV, "1")

    assert build_layer.runtime_python() is None
    assert "WITHOUT BYTECODE" in capsys.readouterr().err
    with pytest.raises(build_layer.LayerBuildError):
        build_layer.runtime_python(allow_uncompiled=False)  # what make layer and make deploy ask for


def test_given_layer_python_set_to_another_version_then_it_fails_without_looking_elsewhere(monkeypatch) -> None:
    monkeypatch.setenv(build_layer.LAYER_PYTHON_ENV, sys.executable)
    with pytest.raises(build_layer.LayerBuildError, match=rf"{build_layer.LAYER_PYTHON_ENV}=.* is Python 3\.\d+"):
        build_layer.find_runtime_python()
    monkeypatch.setenv(build_layer.LAYER_PYTHON_ENV, "/no/such/python3.13")
    with pytest.raises(build_layer.LayerBuildError, match="does not run"):
        build_layer.find_runtime_python()


def test_given_pyenv_versions_then_the_newest_313_is_found(runtime_python, tmp_path) -> None:
    env = _empty_machine(tmp_path)
    for version in ("3.13.0", "3.13.11", "3.12.9"):
        bin_dir = tmp_path / "pyenv" / "versions" / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / f"python{version[:4]}").symlink_to(runtime_python.executable)

    found, _ = build_layer.find_runtime_python(env)

    assert found is not None and found.found_by == "pyenv"
    assert found.executable == str(tmp_path / "pyenv" / "versions" / "3.13.11" / "bin" / "python3.13")


def test_given_the_bytecode_settings_change_then_the_cached_dependencies_are_installed_again(runtime_python) -> None:
    reqs = build_layer.requirements()
    compiled = build_layer.requirements_hash(reqs, build_layer.LAMBDA, runtime_python)
    assert compiled != build_layer.requirements_hash(reqs, build_layer.LAMBDA, None)
    other = build_layer.RuntimePython(runtime_python.executable, runtime_python.version, "00" * 4, "test")
    assert compiled != build_layer.requirements_hash(reqs, build_layer.LAMBDA, other)
    # ...but not the interpreter's path or patch release: 3.13.x share their bytecode
    moved = build_layer.RuntimePython("/elsewhere/python3.13", "3.13.99", runtime_python.magic, "test")
    assert compiled == build_layer.requirements_hash(reqs, build_layer.LAMBDA, moved)
