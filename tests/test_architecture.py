"""The package arrows in docs/ARCHITECTURE.md are the only ones the code has."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_CODE = {"tests", "benchmarks", "vendor", "docs", "examples"}


def allowed_arrows() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = re.search(r"```arrows\n(.*?)```", text, re.S)
    assert block, "docs/ARCHITECTURE.md has no ```arrows block"
    arrows = {}
    for line in block.group(1).splitlines():
        source, _, targets = line.partition("->")
        arrows[source.strip()] = set(targets.split())
    return arrows


def package_of(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def code_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        hidden = any(p.startswith(".") or p.endswith(".egg-info") for p in parts)
        if not hidden and parts[0] not in NOT_CODE:
            files.append(path)
    return files


def imported_packages(path: Path) -> list[tuple[str, int]]:
    """(mem package, line) for every `import mem.x` / `from mem.x import` in a file, lazy
    imports inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "mem" and len(parts) > 1:
                found.append((parts[1], node.lineno))
    return found


def test_the_code_has_only_the_documented_arrows() -> None:
    allowed = allowed_arrows()
    files = code_files()
    assert len(files) > 50, "the scan found too few files to mean anything"
    wrong = []
    for path in files:
        source = package_of(path)
        if source == "__init__":
            continue
        assert source in allowed, f"package {source} is missing from docs/ARCHITECTURE.md"
        for target, line in imported_packages(path):
            if target != source and target not in allowed[source]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {source} -> {target}")
    assert not wrong, "arrows docs/ARCHITECTURE.md does not allow:\n" + "\n".join(wrong)


def test_the_arrows_have_no_cycle_and_the_base_imports_nothing() -> None:
    allowed = allowed_arrows()
    assert allowed["corpus"] == set() and allowed["models"] == set()
    for source in allowed:
        assert "cli" not in allowed[source]
    # Depth-first: a package reached again while it is still being visited closes a cycle.
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in allowed.get(name, ()):
            assert state.get(target) != "open", f"cycle: {' -> '.join([*trail, name, target])}"
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in allowed:
        if name not in state:
            visit(name, [])
