"""The README and docs/ hold to their commands: every ``bash`` block names the tests that run it,
or says why none does; the README's first two commands are the ones CI runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
SETUP_AND_RUN = (
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e . "
    "&& . .venv/bin/activate && dvc repro"
)
SETUP_AND_TEST = (
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e . "
    "&& .venv/bin/python -m pytest"
)
FENCE = re.compile(r"^```bash\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
TESTED_BY = re.compile(r"# tested by: (\S.*)")
NOT_RUN = re.compile(r"# not run by the tests: \S.*")
TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(\w+)")
#: Repository paths written in backticks in the docs (placeholders such as <model> excluded).
REPO_PATH = re.compile(r"`((?:mmls|stages|tests|benchmarks|pipelines)/[\w./-]*)`")


def bash_blocks(page: Path) -> list[tuple[int, str]]:
    """(line number, body) of every fenced ``bash`` block of ``page``."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in FENCE.finditer(text)]


def defined_functions(path: Path) -> set[str]:
    """Names of the functions (and methods) defined in a Python file."""
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of the headings of ``page`` (outside code blocks)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


DOC_BLOCKS = [
    pytest.param(page, line, body, id=f"{page.relative_to(ROOT)}:{line}")
    for page in PAGES
    for i, (line, body) in enumerate(bash_blocks(page))
    if not (page == README and i < 2)
]


def test_the_readme_opens_with_the_two_commands_ci_runs() -> None:
    text = README.read_text()
    (_, first), (_, second) = bash_blocks(README)[:2]
    assert first.strip() == SETUP_AND_RUN
    assert second.strip() == SETUP_AND_TEST
    assert text.index("```bash") < text.index("\n## "), "the commands come before any section"
    assert SETUP_AND_TEST in (ROOT / ".ci" / "run").read_text()


def test_the_docs_show_commands() -> None:
    assert len(DOC_BLOCKS) >= 20  # the block pattern still finds the blocks


@pytest.mark.parametrize(("page", "line", "body"), DOC_BLOCKS)
def test_every_command_block_names_its_test_or_says_why_none(
    page: Path, line: int, body: str
) -> None:
    first = body.split("\n", 1)[0].strip()
    where = f"{page.relative_to(ROOT)}:{line}"
    if NOT_RUN.fullmatch(first):
        return
    tested = TESTED_BY.fullmatch(first)
    assert tested, (
        f"{where}: first line must be '# tested by: ...' or '# not run by the tests: ...'"
    )
    for ref in tested.group(1).split(","):
        named = TEST_REF.fullmatch(ref.strip())
        assert named, f"{where}: {ref.strip()!r} is not tests/<path>.py::<test_name>"
        path = ROOT / named.group(1)
        assert path.is_file(), f"{where}: {named.group(1)} does not exist"
        assert named.group(2) in defined_functions(path), f"{where}: no {named.group(2)} in {path}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_paths_and_doc_links_exist(page: Path) -> None:
    text = page.read_text()
    missing = [p for p in REPO_PATH.findall(text) if not (ROOT / p).exists()]
    for link, anchor in re.findall(r"\]\(((?:docs/)?[\w-]+\.md)(?:#([\w-]+))?\)", text):
        target = page.parent / link
        if not target.is_file() or (anchor and anchor not in anchors(target)):
            missing.append(f"{link}#{anchor}" if anchor else link)
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {missing}"
