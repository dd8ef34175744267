"""README.md stays true: its configuration table names exactly the
environment variables calliq/settings.py reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "calliq" / "settings.py"
README = ROOT / "README.md"


def _is_environ(node: ast.AST) -> bool:
    """`os.environ`."""
    return isinstance(node, ast.Attribute) and node.attr == "environ" and getattr(node.value, "id", None) == "os"


def _environ_read(node: ast.AST) -> ast.AST | None:
    """The name argument of os.environ.get(x), os.getenv(x) or os.environ[x]; None for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        if node.func.attr == "get" and _is_environ(node.func.value):
            return node.args[0]
        if node.func.attr == "getenv" and getattr(node.func.value, "id", None) == "os":
            return node.args[0]
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        return node.slice
    return None


def settings_environment_variables(source: str) -> set[str]:
    """Every variable the settings read: directly by a literal name, or through
    a helper defined there (env_bool("X")) that reads the environment with its parameter."""
    tree = ast.parse(source)
    helpers = set()
    for function in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        parameters = {arg.arg for arg in function.args.args}
        for node in ast.walk(function):
            name = _environ_read(node)
            if isinstance(name, ast.Name) and name.id in parameters:
                helpers.add(function.name)
    found = set()
    for node in ast.walk(tree):
        name = _environ_read(node)
        if name is None and isinstance(node, ast.Call) and getattr(node.func, "id", None) in helpers and node.args:
            name = node.args[0]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            found.add(name.value)
    return found


def readme_configuration_variables(text: str) -> set[str]:
    """The backticked names in the first column of the table under "## Configuration"."""
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def test_the_settings_reader_finds_direct_and_helper_reads():
    source = (
        "import os\n"
        "def flag(n):\n    return os.environ.get(n)\n"
        'A = os.environ.get("A")\nB = flag("B")\nC = os.environ["C"]\nD = os.getenv("D")\n'
    )
    assert settings_environment_variables(source) == {"A", "B", "C", "D"}


def test_every_environment_variable_the_settings_read_is_in_the_readme_table_and_nothing_else():
    read = settings_environment_variables(SETTINGS.read_text())
    documented = readme_configuration_variables(README.read_text())
    assert len(read) > 20  # the reader works on the real file
    assert sorted(read - documented) == [], "read by calliq/settings.py but missing from README's table"
    assert sorted(documented - read) == [], "in README's table but never read by calliq/settings.py"
