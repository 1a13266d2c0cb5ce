"""The shape of the code: light imports, no import cycles, short functions and files, one name per fact."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ucc_tune", "analysis", "search_spaces")


@pytest.mark.parametrize(
    "module",
    [
        "ucc_tune.config",
        "ucc_tune.schema",
        "ucc_tune.search.plan",
        "ucc_tune.search.spaces",
        "ucc_tune.search.command",
        "analysis",
    ],
)
def test_imports_pull_in_neither_torch_nor_ray(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["ucc_tune.search.spaces", "ucc_tune.search.ranking", "analysis"])
def test_loading_a_space_and_the_analysis_need_no_optuna(module: str) -> None:
    code = f"import sys, {module}; print('optuna' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports when it runs (TYPE_CHECKING imports left out)."""
    import grimp

    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, found by depth-first search (each reported once per entry point)."""
    found, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the stack, 2 done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                found.append([*stack[stack.index(other) :], other])
            elif state.get(other) == 0:
                visit(other, [*stack, other])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    return found


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def long_functions(source: str, limit: int) -> dict[str, int]:
    """The functions (and methods) of ``source`` longer than ``limit`` lines, by name."""
    nodes = ast.walk(ast.parse(source))
    functions = [n for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return {f.name: n for f in functions if (n := (f.end_lineno or f.lineno) - f.lineno + 1) > limit}


def test_long_function_finder_counts_lines() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    assert long_functions(f"def short():\n{body}", 61) == {}
    assert long_functions(
        f"class A:\n    def long(self):\n    {body.replace(chr(10), chr(10) + '    ')}", 60
    ) == {"long": 61}


def test_no_function_over_60_lines() -> None:
    files = [p for package in PACKAGES for p in (REPO / package).rglob("*.py")]
    long = {
        f"{p.relative_to(REPO)}:{name}": n
        for p in files
        for name, n in long_functions(p.read_text(), 60).items()
    }
    assert long == {}


def test_tests_mirror_the_packages() -> None:
    packages = {p.parent.name for p in (REPO / "ucc_tune").glob("*/__init__.py")}
    assert packages and packages <= {p.name for p in (REPO / "tests").iterdir() if p.is_dir()}


def test_no_file_over_500_lines() -> None:
    files = [p for package in PACKAGES for p in (REPO / package).rglob("*.py")]
    long = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}


def test_comments_speak_of_the_code() -> None:
    """No pointers to notes outside the repository or to issue numbers in the code."""
    notes = "|".join(f"{name}_NOTES" for name in ("UCC", "RAY"))  # the note files kept beside the repo
    pattern = re.compile(rf"{notes}|shared[/]|\bissue[ ]\d+", re.IGNORECASE)
    roots = [*PACKAGES, "tests", "benchmarks"]
    files = [p for root in roots for p in (REPO / root).rglob("*.py")]
    lines = [(p, n, line) for p in files for n, line in enumerate(p.read_text().splitlines(), 1)]
    hits = [f"{p.relative_to(REPO)}:{n}" for p, n, line in lines if pattern.search(line)]
    assert hits == []


def test_registries_agree_with_the_literals() -> None:
    from ucc_tune.catalog import CATALOG
    from ucc_tune.config import MODEL_NAMES, MODELS_WITH_DROPOUT
    from ucc_tune.data.sources import DATASETS
    from ucc_tune.models import MODELS

    assert list(MODEL_NAMES) == list(MODELS) and set(MODELS_WITH_DROPOUT) <= set(MODELS)
    assert list(DATASETS) == list(CATALOG)
