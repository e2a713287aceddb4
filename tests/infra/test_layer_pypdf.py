"""The pypdf the layer ships, as Lambda runs it: from its bytecode, on the runtime's CPython 3.13, and with no
cryptography package beside it (the layer has none), so AES is what ``interlock.documents`` calls ``encrypted``.

The layer's pydantic is an arm64 wheel, so ``interlock.documents`` itself is not imported here (its behaviour is
tests/unit/test_documents.py); pypdf is pure Python, and its copy from the built layer is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pdf_fixtures import encrypted, text_pdf

from infra import build_layer

PROBE = """
import io, json, sys
from importlib.machinery import SourceFileLoader
sys.path.insert(0, {site!r})
compiled = []
_source_to_code = SourceFileLoader.source_to_code
def _counted(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
SourceFileLoader.source_to_code = _counted
import pypdf
from pypdf.errors import DependencyError
text = pypdf.PdfReader(open({plain!r}, "rb")).pages[0].extract_text()
try:
    pypdf.PdfReader(open({aes!r}, "rb")).pages[0].extract_text()
    aes = "read"
except DependencyError:
    aes = "DependencyError"
print(json.dumps({{"file": pypdf.__file__, "version": pypdf.__version__, "text": text, "aes": aes,
                  "compiled": compiled, "cryptography": "cryptography" in sys.modules}}))
"""


@pytest.fixture(scope="module")
def runtime_python() -> build_layer.RuntimePython:
    found, tried = build_layer.find_runtime_python()
    assert found is not None, "no CPython 3.13 to run the layer's pypdf with; looked for: " + "; ".join(tried)
    return found


def test_given_the_built_layer_then_its_pypdf_reads_a_text_layer_from_bytecode_and_refuses_aes(
    runtime_python: build_layer.RuntimePython, tmp_path: Path,
) -> None:
    build_layer.build()
    assert not (build_layer.SITE_DIR / "cryptography").exists()
    site = tmp_path / "opt" / "python"
    shutil.copytree(build_layer.SITE_DIR / "pypdf", site / "pypdf")
    plain, aes = tmp_path / "plain.pdf", tmp_path / "aes.pdf"
    plain.write_bytes(text_pdf(["Invoice INV-2041 from Acme Tools GmbH"]))
    aes.write_bytes(encrypted(text_pdf(["Invoice INV-2041"]), user_password="", algorithm="AES-256"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}

    done = subprocess.run([runtime_python.executable, "-I", "-S", "-B", "-c",
                           PROBE.format(site=str(site), plain=str(plain), aes=str(aes))],
                          capture_output=True, text=True, env=env, timeout=300, check=False)

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["file"].startswith(str(site))
    assert seen["version"] == build_layer.read_pins()["pypdf"]
    assert seen["text"] == "Invoice INV-2041 from Acme Tools GmbH"
    assert (seen["aes"], seen["cryptography"]) == ("DependencyError", False)
    assert seen["compiled"] == []  # every module of pypdf came from the layer's bytecode
