"""Sphinx configuration of the pyg_multisage documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are
errors). Only ``sphinx.ext.*`` extensions are used. The help texts of the
``pyg-multisage`` command are generated from its argparse parser at every
build (:func:`write_cli_help`, called from :func:`setup`), so the CLI page
never goes stale.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

project = "pyg_multisage"
author = "pyg_multisage developers"
copyright = "2026, pyg_multisage developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = ["Shapes", "Memory"]
nitpicky = False

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_static_path = ["_static"]
html_title = "pyg_multisage"
exclude_patterns = ["_build", "snippets"]

#: Where the generated CLI help texts go (ignored by git, read by cli.rst).
CLI_HELP_DIR = DOCS / "_build" / "cli"
#: ``pyg-multisage`` subcommands documented on the CLI page.
CLI_COMMANDS = (
    "train",
    "evaluate",
    "embed",
    "sample",
    "precompute",
    "index",
    "related",
)


def write_cli_help(out_dir: Path = CLI_HELP_DIR) -> list[Path]:
    """Writes ``pyg-multisage --help`` and ``pyg-multisage CMD --help`` as
    ``main.txt`` and ``<CMD>.txt`` into :obj:`out_dir` (80 columns)."""
    os.environ["COLUMNS"] = "80"
    from pyg_multisage.cli import build_parser

    parser = build_parser()
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = {"main": parser.format_help()}
    sub = next(
        a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"
    )
    for name in CLI_COMMANDS:
        texts[name] = sub.choices[name].format_help()
    paths = []
    for name, text in texts.items():
        path = out_dir / f"{name}.txt"
        path.write_text(text)
        paths.append(path)
    return paths


def setup(app) -> None:
    """Sphinx calls this after reading the configuration."""
    write_cli_help()
