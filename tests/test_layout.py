"""The package's shape: its import graph has no loop, every module imports only from its own
layer or those below it, and the report's modules import only the ones below them (stats ->
results -> tables, figures -> claims -> cli)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
REPORT_ORDER = ["stats", "results", "tables", "figures", "claims", "cli"]
#: The package's layers, lowest first (``hapo_rl/__init__.py``).
LAYERS = [
    "hapo_rl.common",
    "hapo_rl.envs",
    "hapo_rl.core",
    "hapo_rl.teachers",
    "hapo_rl.algos",
    "hapo_rl.methods",
    "hapo_rl.recording",
    "hapo_rl.run",
    "hapo_rl.play",
    "hapo_rl.cost",
    "hapo_rl.experiment",
    "hapo_rl.report",
]


def layer(module: str) -> int:
    return next(i for i, prefix in enumerate(LAYERS) if module == prefix or
                module.startswith(prefix + "."))  # fmt: skip


def module_name(path: Path) -> str:
    if path.parts[0] == "envs":  # installed as hapo_rl.envs
        path = Path("hapo_rl", *path.parts)
    name = ".".join(path.with_suffix("").parts)
    return name.removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    """The hapo_rl modules a file imports anywhere in it (functions included), each named as
    the module its names come from."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def graph() -> dict[str, set[str]]:
    files = [p.relative_to(ROOT) for d in ("hapo_rl", "envs") for p in (ROOT / d).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    return {
        m: {i for i in imports(ROOT / p) if i in modules and i != m and not m.startswith(i + ".")}
        for m, p in modules.items()
    }


def test_the_import_graph_has_no_loop():
    edges = graph()
    state: dict[str, str] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                pytest.fail("import loop: " + " -> ".join([*path, m, n]))
            if n not in state:
                visit(n, [*path, m])
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m, [])


def test_every_module_imports_only_from_its_layer_or_below():
    for module, imported in graph().items():
        if module == "hapo_rl":  # the package's public names, from the top
            continue
        for other in imported - {"hapo_rl"}:
            assert layer(other) <= layer(module), f"{module} imports {other}, a higher layer"


def test_the_report_imports_only_downwards():
    edges = graph()
    for i, name in enumerate(REPORT_ORDER):
        above = {f"hapo_rl.report.{n}" for n in REPORT_ORDER[i:]}
        assert not edges[f"hapo_rl.report.{name}"] & above, name


@pytest.mark.parametrize(
    "module",
    [
        "hapo_rl.run",
        "hapo_rl.experiment",
        "hapo_rl.report",
        "hapo_rl.teachers.evaluate",
        "hapo_rl.teachers.record",
        "hapo_rl.play",
    ],
)
def test_every_command_the_readme_names_still_runs(module):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and f"usage: python -m {module}" in done.stdout


def test_the_public_imports_still_work():
    from hapo_rl import BC, GRPO, HAPO, JSRL  # noqa: F401
    from hapo_rl.report import Results, load, main  # noqa: F401


def test_run_help_groups_each_setting_under_the_methods_it_applies_to():
    from hapo_rl.run import build_parser

    title, under = None, {}
    for line in build_parser().format_help().splitlines():
        if line and not line.startswith(" "):  # a group's title
            title = line
        elif line.startswith("  --"):
            under[line.split()[0]] = title
        elif line.startswith("  applies to:"):
            under[title] = line
    assert under["--tau"].startswith("HAPO:") and under["--gate"] == under["--tau"]
    assert under["--group-size"].startswith("group methods")
    assert (
        under["--jsrl-stages"].startswith("JSRL")
        and under["--demos-per-iter"] == "behaviour cloning:"
    )
    assert under[under["--tau"]] == "  applies to: hapo, hapo-paper, always-inject, mixed, bc-grpo"
