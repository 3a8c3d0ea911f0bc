"""The docs against the code: the source contract, the package layout, and no pointers to notes outside the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from features.contract import CONTRACT

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_DOC = ROOT / "docs" / "CONTRACT.md"
ARCHITECTURE_DOC = ROOT / "docs" / "ARCHITECTURE.md"
README = ROOT / "README.md"
LIBRARIES = ("features", "training", "serving", "pipelines")
# Notes kept outside the repository; users never see them, so no tracked file may point there.
# Spelt in pieces so that this file does not name them itself.
OUTSIDE_NOTES = ("DESIGN" + ".md", "CONVENTIONS" + ".md", "../" + "shared", "/work/" + "shared")

# docs/CONTRACT.md: "### `accounts` — required table", then a table | column | type | required | meaning |.
_TABLE_HEADING = re.compile(r"^### `(\w+)` — (required|optional) table\s*$")
_COLUMN_ROW = re.compile(r"^\| `(\w+)` \| (\w+) \| (yes|no) \|")


def parse_contract_doc(text: str) -> dict[str, dict]:
    """{table: {"required": bool, "columns": {column: (dtype, required)}}} as docs/CONTRACT.md states them."""
    tables: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        heading = _TABLE_HEADING.match(line)
        if heading:
            current = tables.setdefault(heading[1], {"required": heading[2] == "required", "columns": {}})
            continue
        if line.startswith("#"):
            current = None
            continue
        row = _COLUMN_ROW.match(line)
        if row and current is not None:
            assert row[1] not in current["columns"], f"column {row[1]} listed twice"
            current["columns"][row[1]] = (row[2], row[3] == "yes")
    return tables


def test_every_contract_table_and_column_is_documented_as_the_code_declares_it():
    documented = parse_contract_doc(CONTRACT_DOC.read_text(encoding="utf-8"))
    assert sorted(documented) == sorted(CONTRACT), "docs/CONTRACT.md lists other tables than features/contract.py"
    for name, spec in CONTRACT.items():
        doc = documented[name]
        assert doc["required"] == spec.required, f"table {name}: required is {spec.required} in the code"
        expected = {c.name: (c.dtype, c.required) for c in spec.columns}
        assert doc["columns"] == expected, f"table {name}: the columns differ from features/contract.py"


def test_a_stale_contract_doc_fails_the_check():
    """Guard against a check that cannot fail: a column left out, or marked wrong, is caught."""
    text = CONTRACT_DOC.read_text(encoding="utf-8")
    without = "\n".join(line for line in text.splitlines() if not line.startswith("| `event_name` |"))
    assert "event_name" not in parse_contract_doc(without)["events"]["columns"]
    flipped = text.replace("| `seats` | float64 | no |", "| `seats` | float64 | yes |")
    assert parse_contract_doc(flipped)["subscriptions"]["columns"]["seats"] == ("float64", True)


def packages() -> list[str]:
    """Every package and sub-package folder (one with __init__.py) of the libraries, as 'pipelines/validation'."""
    found = []
    for library in LIBRARIES:
        for init in sorted((ROOT / library).rglob("__init__.py")):
            found.append(init.parent.relative_to(ROOT).as_posix())
    return found


def readme_layout() -> dict[str, str]:
    """The README's Layout tree: each top-level folder and the text of its entry (its line and the indented ones)."""
    section = README.read_text(encoding="utf-8").split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    tree = section.split("```", 2)[1]
    entries: dict[str, str] = {}
    current = None
    for line in tree.splitlines():
        top = re.match(r"^(\w+)/", line)
        if top:
            current = top[1]
            entries[current] = line[len(top[0]):]
        elif current is not None and line.startswith(" "):
            entries[current] += "\n" + line
    return entries


def test_the_package_tree_is_found():
    assert {"features", "training", "serving", "pipelines", "pipelines/validation"} <= set(packages())


@pytest.mark.parametrize("package", packages())
def test_every_package_is_named_in_the_readme_layout(package):
    top, *rest = package.split("/")
    entries = readme_layout()
    assert top in entries, f"README Layout has no entry {top}/"
    for name in rest:
        assert re.search(rf"(?<![\w/]){re.escape(name)}/", entries[top]), (
            f"README Layout: {package}/ is not named in the {top}/ entry")


@pytest.mark.parametrize("package", packages())
def test_every_package_is_named_in_the_architecture_doc(package):
    assert f"`{package}/`" in ARCHITECTURE_DOC.read_text(encoding="utf-8"), (
        f"docs/ARCHITECTURE.md does not name `{package}/`")


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_no_tracked_file_points_to_notes_outside_the_repository():
    offending = []
    for path in tracked_files():
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        offending += [f"{path.relative_to(ROOT)}: {note}" for note in OUTSIDE_NOTES if note in text]
    assert not offending, "tracked files point outside the repository: " + "; ".join(offending)
