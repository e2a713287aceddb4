"""What the layer's copy of the interlock package holds: every workflow package's code, state machines, prompts
and policies, and none of the local-only parts (the embedded cloud, the CLI, the samples)."""

from __future__ import annotations

from pathlib import Path

from infra import build_layer


def test_given_the_package_when_copied_into_a_layer_then_workflow_files_ship_and_local_only_parts_do_not(
    tmp_path: Path,
) -> None:
    target = build_layer.LayerTarget("a test layer", tmp_path / "layer", tmp_path / "stamp", (), verify_hashes=False)

    package = build_layer.copy_package(target)

    workflows = sorted(p.name for p in (build_layer.PACKAGE_SRC / "workflows").iterdir()
                       if (p / "__init__.py").is_file())
    assert {"support_triage", "sales_lead"} <= set(workflows)
    for name in workflows:
        source, copied = build_layer.PACKAGE_SRC / "workflows" / name, package / "workflows" / name
        wanted = [p.relative_to(source) for p in source.rglob("*") if p.is_file() and "samples" not in p.parts
                  and "__pycache__" not in p.parts]
        assert [p for p in wanted if not (copied / p).is_file()] == [], name
        assert not (copied / "samples").exists(), name
    for prompt in ("classify_ticket.v1.md", "classify_ticket.v2.md", "draft_reply.v1.md"):
        shipped = package / "workflows" / "support_triage" / "prompts" / prompt
        assert shipped.read_bytes() == (build_layer.PACKAGE_SRC / shipped.relative_to(package)).read_bytes()
    assert (package / "workflows" / "support_triage" / "policies" / "support_triage.md").is_file()
    for local_only in build_layer.LOCAL_ONLY:
        assert not (package / local_only).exists(), local_only
