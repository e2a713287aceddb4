"""docs/deploy.md's Settings table names every deployment setting (``DeploymentSettings``) as ``interlock:<name>``,
and names nothing else: a setting added to the topology without its row, or a row left behind by a removed one,
fails here."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from interlock.topology import DeploymentSettings

DEPLOY_MD = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
# The one grouped row the table has: `interlock:ai_*` points at the AI settings' own table, which must then list
# each of them by name.
GROUPED = {"ai_": "### Model tiers, budgets and prices"}
_KEY = re.compile(r"`interlock:([a-z0-9_]+\*?)`")


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole line), up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines))
                if re.match(rf"#{{1,{level}}} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def _keys(section: str) -> set[str]:
    """The ``interlock:<name>`` keys in the first column of the section's table rows."""
    keys: set[str] = set()
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            keys.update(_KEY.findall(cells[1]))
    return keys


def test_given_the_deployment_settings_then_each_has_its_row_in_the_settings_table() -> None:
    text = DEPLOY_MD.read_text(encoding="utf-8")
    listed = _keys(_section(text, "## Settings"))
    names = [f.name for f in fields(DeploymentSettings)]

    missing = []
    for name in names:
        if name in listed:
            continue
        prefix = next((p for p in GROUPED if name.startswith(p) and f"{p}*" in listed), None)
        if prefix is None or name not in _keys(_section(text, GROUPED[prefix])):
            missing.append(name)
    assert not missing, ("docs/deploy.md, ## Settings: no row for "
                         + ", ".join(f"interlock:{name}" for name in missing))


def test_given_the_settings_table_then_every_key_it_names_is_a_deployment_setting() -> None:
    listed = _keys(_section(DEPLOY_MD.read_text(encoding="utf-8"), "## Settings"))
    names = {f.name for f in fields(DeploymentSettings)}

    unknown = sorted(key for key in listed if key not in names and key.removesuffix("*") not in GROUPED)
    assert not unknown, ("docs/deploy.md, ## Settings names keys that are no deployment setting: "
                         + ", ".join(f"interlock:{key}" for key in unknown))
