"""The layout is the lesson: the four scripts at the top, within their line budgets, read in the
README's order; everything else in folders, importing one way, with no circles."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"prepare": 160, "model": 350, "train": 350, "sample": 120}  # the line budgets of the lesson
FOLDERS = ("machinery", "engine", "lessons", "exercises", "bench")


def module_name(path):
    """machinery/cli.py -> machinery.cli; train.py -> train."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in [*ROOT.glob("*.py"), *(p for f in FOLDERS for p in (ROOT / f).glob("*.py"))]}


def imports(path, top_level_only=False):
    """The repo's own modules that a file imports (at the top only, or anywhere, inside functions too)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n in MODULES}


def test_the_top_level_is_the_lesson():
    extra = {p.name for p in ROOT.glob("*.py")} - {f"{name}.py" for name in [*SCRIPTS, "config"]}
    assert not extra, (f"{', '.join(sorted(extra))} at the top level, which holds the lesson alone: put a script of "
                       f"your own in a folder (scratch/, say, run as python -m scratch.NAME)")
    assert all((ROOT / f"{name}.py").exists() for name in [*SCRIPTS, "config"])
    for name, budget in SCRIPTS.items():
        lines = len((ROOT / f"{name}.py").read_text().splitlines())
        assert lines <= budget, (f"{name}.py has {lines} lines, over its budget of {budget}: move what is not the "
                                 f"lesson into a folder (in a fork, raise its budget in SCRIPTS, tests/test_layout.py, "
                                 f"if you must)")


def test_no_line_is_packed_past_120_characters():
    """The budgets count lines, so a line must not grow to hold two: each line of the code and the tests is at most
    120 characters (bench/results/ keeps the scripts of past measurements as they ran)."""
    files = [*MODULES.values(), *(ROOT / "tests").glob("*.py")]
    long = [f"{path.relative_to(ROOT)}:{number}" for path in files
            for number, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 120]
    assert not long, f"lines over 120 characters: {', '.join(long)} — break each in two"


def test_the_readme_is_an_entry_point_and_its_file_table_is_a_reading_order():
    """At most 150 lines. Every top-level file has a row, with its length as it is, and each
    imports only files in the rows above it."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    rows = re.findall(r"^\| `(\w+)\.py` \| (\d+) \|", readme, re.M)
    assert sorted(name for name, _ in rows) == sorted([*SCRIPTS, "config"])
    lengths = {name: len((ROOT / f"{name}.py").read_text().splitlines()) for name, _ in rows}
    wrong = [f"{name}.py has {lines} lines: write {lengths[name]}" for name, lines in rows
             if int(lines) != lengths[name]]  # every wrong row at once: a fork may have edited several files
    assert not wrong, f"the README's file table says {'; '.join(wrong)} (a fork edits the table, or drops this test)"
    for i, (name, _) in enumerate(rows):
        upward = {m for m in imports(ROOT / f"{name}.py") if m in SCRIPTS or m == "config"} - {n for n, _ in rows[:i]}
        assert not upward, f"{name}.py imports {upward}, which the README's table lists below it"


def test_docs_say_what_each_test_file_checks():
    """docs/tests.md has a row for each file of tests/, so a file added there gets one too."""
    listed = set(re.findall(r"^\| (test_\w+\.py) \|", (ROOT / "docs" / "tests.md").read_text(), re.M))
    present = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert listed == present, (f"docs/tests.md's table of test files lacks {sorted(present - listed)} and has "
                               f"{sorted(listed - present)}, which tests/ has not")


def test_the_words_page_names_only_what_the_code_has():
    """docs/words.md points at functions and names: a rename in the code renames them there too."""
    code = "\n".join(path.read_text() for path in MODULES.values())
    named = set(re.findall(r"`([A-Za-z_][\w.]*)`", (ROOT / "docs" / "words.md").read_text()))
    missing = sorted(name for name in named if not re.search(rf"\b{re.escape(name.split('.')[-1])}\b", code))
    assert not missing, f"docs/words.md names {missing}, which no .py file of the repo has: rename them there"


def heading_anchors(markdown):
    """The #anchors GitHub makes of a page's headings: lower case, punctuation dropped, spaces -> hyphens; a
    heading met again gets -1, -2, ... ."""
    anchors, met = set(), {}
    for heading in re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(anchor + (f"-{met[anchor]}" if anchor in met else ""))
        met[anchor] = met.get(anchor, 0) + 1
    return anchors


def test_every_link_between_the_pages_leads_somewhere():
    """A file moved or a heading renamed leaves links behind: each relative link of the README, docs/ and the results
    pages must name a file that is there and, after a #, one of its headings."""
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "bench" / "results").rglob("*.md")]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```|`[^`\n]*`", "", page.read_text(), flags=re.S)  # (code is not a link)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # https:, mailto: (the network is no test's)
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and linked.suffix == ".md"
                                       and anchor not in heading_anchors(linked.read_text())):
                broken.append(f"{page.relative_to(ROOT)}: ({target})")
    assert not broken, f"links to nothing (a file moved, or a heading renamed): {broken}"


@pytest.mark.parametrize("folder, allowed", [
    ("model", set()),  # the model needs only torch
    ("machinery", {"machinery", "model", "config"}),  # never a script
    ("engine", {"engine", "model"}),
])
def test_imports_point_one_way(folder, allowed):
    for name, path in MODULES.items():
        if name == folder or name.startswith(folder + "."):
            outside = {m.split(".")[0] for m in imports(path)} - allowed
            assert not outside, f"{name} imports {outside}"


def test_nothing_depends_on_the_exercises():
    """A learner's half-written exercise can break nothing but the exercises themselves."""
    for name, path in MODULES.items():
        if not name.startswith("exercises"):
            assert not {m for m in imports(path) if m.startswith("exercises")}, f"{name} imports the exercises"


def test_no_circles():
    """Import every module in an order: a module's top-level imports are all earlier in it."""
    graph = {name: imports(path, top_level_only=True) - {name} for name, path in MODULES.items()}
    graph = {name: {m for m in deps if m in graph} for name, deps in graph.items()}
    done, visiting = set(), []

    def visit(name):
        assert name not in visiting, f"an import circle: {' -> '.join(visiting[visiting.index(name):] + [name])}"
        if name not in done:
            visiting.append(name)
            for dep in sorted(graph[name]):
                visit(dep)
            visiting.pop()
            done.add(name)

    for name in sorted(graph):
        visit(name)


def test_a_folder_module_run_as_a_file_says_how_to_run_it():
    """python lessons/plot.py would fail on its first import of the repo: each runnable module in
    the folders says to use python -m instead (one is run, the others read)."""
    runnable = {name: path for name, path in MODULES.items()  # (an exercise's file imports the repo only inside a
                if "." in name and 'if __name__ == "__main__"' in path.read_text()  # function: it runs as a file,
                and not re.fullmatch(r"exercises\.ex\d+_\w+", name)}  # test_exercises.py)
    assert "lessons.plot" in runnable and "bench.suite" in runnable
    for name, path in runnable.items():
        guard = path.read_text().split("\nif not __package__:", 1)
        assert len(guard) == 2 and f'"python", "-m", "{name.removesuffix(".__main__")}"' in guard[1][:300], name
        assert not imports(path, top_level_only=True) & imports_in(guard[0]), f"{name} imports the repo before it"
    run = subprocess.run([sys.executable, "exercises", "check", "3"], cwd=ROOT, capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == "error: run it as a module, from the repo's folder — python -m exercises check 3\n"


def imports_in(source):
    tree = ast.parse(source)
    return {n for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
            for n in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module])}
