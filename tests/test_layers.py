"""The package's layering (docs/architecture.rst): data flows one way, and a
module imports only from its own layer or the layers listed before it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyg_multisage

# Bottom first; the same order as the table in docs/architecture.rst.
LAYERS = [
    ("_checks", "_arraydir", "presets"),
    ("convention",),
    ("graph",),
    ("storage",),
    ("sampling",),
    ("text",),
    ("transforms",),
    ("sampler",),
    ("loader",),
    ("nn",),
    ("losses",),
    ("metrics", "references"),
    ("tasks",),
    ("checkpoint", "run_folder", "train"),
    ("datasets",),
    ("objectives",),
    ("experiment",),
    ("distributed",),
    ("cli", "demo"),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
ROOT = Path(pyg_multisage.__file__).parent


def imported_parts(tree: ast.AST) -> list[str]:
    """The top-level parts of the package each import names."""
    parts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module.split(".")
            if mod[0] != "pyg_multisage":
                continue
            if len(mod) > 1:
                parts.append(mod[1])
            else:  # from pyg_multisage import experiment
                parts += [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                mod = alias.name.split(".")
                if mod[0] == "pyg_multisage" and len(mod) > 1:
                    parts.append(mod[1])
    return parts


def modules() -> list[Path]:
    return sorted(
        p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] != "__init__.py"
    )


def test_every_module_has_a_layer():
    parts = {p.relative_to(ROOT).with_suffix("").parts[0] for p in modules()}
    assert parts - set(RANK) == set()


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_upward(path):
    me = path.relative_to(ROOT).with_suffix("").parts[0]
    upward = [
        other
        for other in imported_parts(ast.parse(path.read_text()))
        if other in RANK and RANK[other] > RANK[me]
    ]
    assert upward == [], f"{me} imports from layers above it: {upward}"
    unknown = [o for o in imported_parts(ast.parse(path.read_text())) if o not in RANK]
    assert all(o == "__version__" for o in unknown), unknown
