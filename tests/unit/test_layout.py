"""The package's structural promises: engines are the only modules that import pyspark or ray, and
library modules log rather than print."""

from __future__ import annotations

import ast
from pathlib import Path

import curate

PACKAGE = Path(curate.__file__).parent
ENGINE_MODULES = {"pyspark", "ray"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_engines_import_spark_or_ray():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.parent.name != "engines" and _imports(p) & ENGINE_MODULES]
    assert offenders == []


def test_library_modules_do_not_print():
    def prints(path: Path) -> bool:
        return any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
                   for n in ast.walk(ast.parse(path.read_text())))

    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.stem not in ("cli", "cliutil") and "report" not in p.parts and prints(p)]
    assert offenders == []
