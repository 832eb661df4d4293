"""The layer rules of docs/DESIGN.md, checked on every `make test`.

`.importlinter` (repository root) is the source of truth for which package may
import which, and for torch staying out of store/, diagnostics/, records,
config and the UI. What import-linter cannot say — that SQL runs only in
store/ — is checked here by reading the sources, as is the layout of the
tests (each module's own test file). The UI's start-up without torch is also
checked at run time in tests/labeling/test_candidates.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tuilab"

# A statement sent to SQLite: a cursor/connection/database `execute*` call.
SQL_CALL = re.compile(r"\.(execute|executemany|executescript)\(")

# Files outside store/ that still run SQL, each with who moves it into store/ (issue 8 step 6).
# The test fails when one of them is clean, so this list only shrinks.
NOT_YET_MOVED: dict[str, str] = {}


def test_import_contracts_hold(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out


def sql_files() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("tuilab/store/"):
            continue
        lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if SQL_CALL.search(line)]
        if lines:
            found[rel] = lines
    return found


def test_sql_runs_only_in_store():
    found = sql_files()
    new = {f: lines for f, lines in found.items() if f not in NOT_YET_MOVED}
    assert not new, f"SQL outside tuilab/store/ (add a function to store/ and call it): {new}"
    moved = sorted(set(NOT_YET_MOVED) - set(found))
    assert not moved, f"no SQL left in {moved}: remove them from NOT_YET_MOVED"



def mirror_test(module: Path) -> Path:
    """`tuilab/a/b.py` → `tests/a/test_b.py`: where a module's own tests live."""
    rel = module.relative_to(PACKAGE)
    return ROOT / "tests" / rel.parent / f"test_{rel.name}"


def test_every_module_has_its_own_test_file():
    """Tests mirror the package, so "where are X's tests" answers in one guess (CLI verbs are tested
    through `tuilab.cli.main`, so the file is not required to import its module)."""
    missing, empty = [], []
    for module in sorted(PACKAGE.rglob("*.py")):
        if module.name in ("__init__.py", "__main__.py"):
            continue
        test = mirror_test(module)
        if not test.exists():
            missing.append(test.relative_to(ROOT).as_posix())
        elif not re.search(r"^(async )?def test_|^    (async )?def test_", test.read_text(), re.M):
            empty.append(test.relative_to(ROOT).as_posix())
    assert not missing, f"modules without their own test file: {missing}"
    assert not empty, f"test files with no test: {empty}"
