"""The README is a user's document: short, every link in it resolves, and a results table in it is
never typed by hand. Each Markdown table in the README must be followed by a line
``<!-- table-source: PATH -->`` naming a file committed to the repository (a report written by
``weightspace bench`` or ``weightspace report``), and must appear in that file verbatim, so that it
cannot drift from the report or be edited on its own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 200

SOURCE = re.compile(r"<!--\s*table-source:\s*(\S+)\s*-->")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def table_blocks(text: str) -> list[tuple[int, str]]:
    """Markdown tables outside code fences, as (index of the line after the table, the table's lines
    joined, trailing spaces removed)."""
    blocks, current, fence = [], [], None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        marker = stripped[:3]
        if marker in ("```", "~~~") and (fence is None or marker == fence):
            fence = None if fence else marker
        is_row = fence is None and stripped.startswith("|")
        if is_row:
            current.append(line.rstrip())
        if current and (not is_row or i == len(lines) - 1):
            blocks.append((i if not is_row else i + 1, "\n".join(current)))
            current = []
    return blocks


def committed(path: Path, root: Path) -> bool:
    """Whether git tracks ``path``; True when ``root`` is no git checkout (e.g. an unpacked sdist)."""
    if not (root / ".git").exists() or shutil.which("git") is None:
        return True
    result = subprocess.run(
        ["git", "ls-files", "--error-unmatch", str(path.relative_to(root))],
        cwd=root,
        capture_output=True,
    )
    return result.returncode == 0


def table_problems(readme_text: str, root: Path) -> list[str]:
    """Why each table of ``readme_text`` is not a verbatim copy of a table in its committed source."""
    problems = []
    lines = readme_text.splitlines()
    for after, table in table_blocks(readme_text):
        header = table.splitlines()[0]
        following = [line for line in lines[after : after + 4] if line.strip()][:2]
        match = next((m for m in map(SOURCE.search, following) if m), None)
        if match is None:
            problems.append(f"table {header!r} has no '<!-- table-source: PATH -->' line under it")
            continue
        source = (root / match.group(1)).resolve()
        if not source.is_file():
            problems.append(f"table {header!r}: its source {match.group(1)} does not exist")
            continue
        if not committed(source, root):
            problems.append(f"table {header!r}: its source {match.group(1)} is not committed")
            continue
        if table not in {block for _, block in table_blocks(source.read_text())}:
            problems.append(f"table {header!r} differs from every table of {match.group(1)}")
    return problems


def test_readme_is_short() -> None:
    n = len(README.read_text().splitlines())
    assert n < MAX_LINES, f"README.md has {n} lines; keep it under {MAX_LINES} (details belong in docs/)"


def test_readme_links_resolve() -> None:
    text = README.read_text()
    anchors = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("#")
    }
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors:
                broken.append(target)
        elif not (README.parent / path).exists():
            broken.append(target)
    assert not broken, f"README.md links to missing files or headings: {broken}"


def test_readme_tables_are_copied_from_committed_reports() -> None:
    assert table_problems(README.read_text(), ROOT) == []


def test_table_check_catches_a_hand_edited_table(tmp_path: Path) -> None:
    report = "# Bench report\n\n| method | out |\n|---|---|\n| dynadiff | 0.2907 |\n| nearest-zoo | 0.3340 |\n"
    (tmp_path / "report.md").write_text(report)
    table = "| method | out |\n|---|---|\n| dynadiff | 0.2907 |\n| nearest-zoo | 0.3340 |\n"
    fenced = "```text\n| not | a table |\n```\n"
    copied = f"# README\n\n{fenced}\n{table}\n<!-- table-source: report.md -->\n"
    assert [block for _, block in table_blocks(copied)] == [table.rstrip("\n")]
    assert table_problems(copied, tmp_path) == []
    edited = copied.replace("0.2907", "0.2807")
    assert "differs" in table_problems(edited, tmp_path)[0]
    unsourced = f"# README\n\n{table}\nCopied by hand.\n"
    assert "no '<!-- table-source" in table_problems(unsourced, tmp_path)[0]
    missing = copied.replace("report.md", "results/report.md")
    assert "does not exist" in table_problems(missing, tmp_path)[0]
