"""Integrity of the documentation site (docs/), checked without building it.

The fast tests parse the reStructuredText sources: every toctree entry and
``:doc:`` target is a document, every document is in some toctree, every
``:ref:`` label is defined, every ``automodule`` target imports, every
``image``/``literalinclude``/``csv-table :file:`` path exists (the CLI help
texts, generated at build time by ``docs/conf.py``, are generated here into a
temporary folder), every relative hyperlink resolves, and every repository
path the pages name (``examples/...``, ``benchmarks/...``) exists.

Marked slow: the real ``sphinx-build -W`` (when Sphinx is installed) and the
two code snippets the pages include, run and checked.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCES = sorted(
    p for p in DOCS.rglob("*.rst") if "_build" not in p.relative_to(DOCS).parts
)
DOC_NAMES = {p.relative_to(DOCS).with_suffix("").as_posix() for p in SOURCES}

#: Outputs of long runs that the pages describe; they may be absent in a
#: fresh checkout (the comparison page shows a placeholder until then).
RUN_OUTPUTS = {"benchmarks/results/dblp_comparison.json"}

_DIRECTIVE = re.compile(r"^(\s*)\.\. ([\w:-]+)::\s*(.*)$")


def _docname(path: Path) -> str:
    return path.relative_to(DOCS).with_suffix("").as_posix()


def _resolve_doc(source: Path, target: str) -> str:
    """Sphinx's rule: absolute from the source dir with a leading '/', else
    relative to the referring document's folder."""
    if target.startswith("/"):
        return target.lstrip("/")
    base = Path(_docname(source)).parent
    parts: list[str] = []
    for part in (base / target).as_posix().split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _directives(name: str):
    """(source, line number, argument, option lines, body lines) of every
    ``.. name::`` directive in the docs."""
    for src in SOURCES:
        lines = src.read_text().splitlines()
        for i, line in enumerate(lines):
            m = _DIRECTIVE.match(line)
            if not m or m.group(2) != name:
                continue
            indent = len(m.group(1))
            options, body = [], []
            for nxt in lines[i + 1 :]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                stripped = nxt.strip()
                if stripped.startswith(":") and not body:
                    options.append(stripped)
                elif stripped:
                    body.append(stripped)
            yield src, i + 1, m.group(3).strip(), options, body


def _roles(role: str):
    """(source, target) of every ``:role:`text <target>``` or
    ``:role:`target```."""
    pattern = re.compile(r":" + role + r":`([^`]+)`", re.S)
    for src in SOURCES:
        for m in pattern.finditer(src.read_text()):
            text = " ".join(m.group(1).split())
            inner = re.search(r"<([^<>]+)>$", text)
            yield src, (inner.group(1) if inner else text)


def _toctree_entries():
    for src, line, _, _, body in _directives("toctree"):
        for entry in body:
            target = re.search(r"<([^<>]+)>$", entry)
            yield src, line, target.group(1) if target else entry


def test_sources_found():
    assert (DOCS / "conf.py").is_file()
    assert {"index", "api", "comparison", "cli"} <= DOC_NAMES


def test_toctree_entries_exist():
    missing = [
        f"{_docname(src)}:{line}: {entry}"
        for src, line, entry in _toctree_entries()
        if _resolve_doc(src, entry) not in DOC_NAMES
    ]
    assert not missing, missing


def test_every_document_is_in_a_toctree():
    listed = {_resolve_doc(src, entry) for src, _, entry in _toctree_entries()}
    orphans = sorted(DOC_NAMES - listed - {"index"})
    assert not orphans, f"not in any toctree (sphinx -W fails): {orphans}"


def test_doc_roles_resolve():
    missing = [
        f"{_docname(src)}: :doc:`{target}`"
        for src, target in _roles("doc")
        if _resolve_doc(src, target) not in DOC_NAMES
    ]
    assert not missing, missing


def test_ref_labels_defined():
    labels = set()
    for src in SOURCES:
        labels |= set(re.findall(r"^\.\. _([\w-]+):\s*$", src.read_text(), re.M))
    missing = [
        f"{_docname(src)}: :ref:`{t}`" for src, t in _roles("ref") if t not in labels
    ]
    assert not missing, missing


def test_automodule_targets_import():
    targets = [(src, arg) for src, _, arg, _, _ in _directives("automodule")]
    assert len(targets) >= 16
    for _src, module in targets:
        importlib.import_module(module)  # an ImportError names the module


def test_api_reference_covers_public_modules():
    documented = {arg for _, _, arg, _, _ in _directives("automodule")}
    public = {
        "pyg_multisage." + m
        for m in (
            "graph sampling transforms sampler loader nn nn.conv nn.models "
            "nn.text text losses metrics tasks train datasets experiment cli"
        ).split()
    }
    assert public <= documented, sorted(public - documented)


def _load_conf():
    spec = importlib.util.spec_from_file_location(
        "_pyg_multisage_docs_conf", DOCS / "conf.py"
    )
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


def test_cli_help_generation(tmp_path):
    conf = _load_conf()
    paths = conf.write_cli_help(tmp_path)
    names = {p.stem for p in paths}
    assert names == {"main", *conf.CLI_COMMANDS}
    main = (tmp_path / "main.txt").read_text()
    assert main.startswith("usage: pyg-multisage")
    for command in conf.CLI_COMMANDS:
        assert command in main
        assert (
            (tmp_path / f"{command}.txt")
            .read_text()
            .startswith(f"usage: pyg-multisage {command}")
        )


def _included_files():
    for name in ("image", "figure", "literalinclude"):
        for src, line, arg, _, _ in _directives(name):
            yield src, line, arg
    for src, line, _, options, _ in _directives("csv-table"):
        for opt in options:
            if opt.startswith(":file:"):
                yield src, line, opt.split(":", 2)[2].strip()


def test_included_files_exist(tmp_path):
    generated = {p.relative_to(tmp_path).as_posix() for p in _generated(tmp_path)}
    missing = []
    for src, line, arg in _included_files():
        path = (DOCS / arg.lstrip("/")) if arg.startswith("/") else src.parent / arg
        resolved = path.resolve()
        inside = resolved.is_relative_to(DOCS)
        rel = resolved.relative_to(DOCS).as_posix() if inside else ""
        if rel.startswith("_build/"):
            # Written by conf.py at build time; must be among what it writes.
            if rel.removeprefix("_build/") not in generated:
                missing.append(f"{_docname(src)}:{line}: {arg} (never generated)")
        elif not path.is_file():
            missing.append(f"{_docname(src)}:{line}: {arg}")
    assert not missing, missing


def _generated(tmp_path: Path) -> list[Path]:
    conf = _load_conf()
    return conf.write_cli_help(tmp_path / "cli")


def test_relative_hyperlinks_resolve():
    link = re.compile(r"`[^`<]*<([^<>`]+)>`__?")
    target = re.compile(r"^\.\. _[^:\n]+:[ \t]+(\S+)[ \t]*$", re.M)
    missing = []
    for src in SOURCES:
        text = src.read_text()
        for url in link.findall(text) + target.findall(text):
            if re.match(r"[a-z]+:", url) or url.endswith("_"):
                continue  # external URL or a named reference
            if not (src.parent / url.split("#")[0]).exists():
                missing.append(f"{_docname(src)}: {url}")
    assert not missing, missing


def test_repository_paths_named_by_the_pages_exist():
    pattern = re.compile(
        r"``((?:examples|benchmarks|pyg_multisage|tests|docs)/[\w./-]+\.(?:py|json|png))``"
    )
    named = {m for src in SOURCES for m in pattern.findall(src.read_text())}
    assert "examples/custom_neighbors.py" in named
    missing = sorted(p for p in named - RUN_OUTPUTS if not (ROOT / p).exists())
    assert not missing, missing


# ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None, reason="sphinx is not installed"
)
def test_sphinx_build_has_no_warnings(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "html" / "api" / "nn.conv.html").is_file()


@pytest.mark.slow
def test_quickstart_snippet_trains():
    ns = runpy.run_path(str(DOCS / "snippets" / "quickstart.py"), run_name="snippet")
    data, loss = ns["data"], ns["loss"]
    edges = data["item", "walk_via_board", "item"]
    assert edges.context_type == "board"
    assert edges.edge_index.size(1) == edges.edge_weight.numel() > 0
    assert bool(
        ((edges.context >= -1) & (edges.context < data["board"].num_nodes)).all()
    )
    assert loss.ndim == 0 and bool(loss.isfinite())
    grads = [p.grad for p in ns["model"].parameters() if p.grad is not None]
    assert grads and all(bool(g.isfinite().all()) for g in grads)


@pytest.mark.slow
def test_custom_transform_snippet_follows_the_protocol():
    ns = runpy.run_path(
        str(DOCS / "snippets" / "custom_transform.py"), run_name="snippet"
    )
    data, pairs, k = ns["data"], ns["engaged"], 10
    store = data["item", "co_engaged", "item"]
    nbr, ego = store.edge_index
    weight = store.edge_weight
    assert weight.dtype.is_floating_point
    # Grouped by ego, weight descending within an ego, no self-pairs.
    assert bool((ego[1:] >= ego[:-1]).all())
    same = ego[1:] == ego[:-1]
    assert bool((weight[1:][same] <= weight[:-1][same]).all())
    assert bool((nbr != ego).all())
    # Exactly the top-k co-engaged items (count desc, id asc) of a reference.
    counts: dict[tuple[int, int], int] = {}
    for a, b in pairs.t().tolist():
        if a != b:
            counts[(b, a)] = counts.get((b, a), 0) + 1
            counts[(a, b)] = counts.get((a, b), 0) + 1
    rows: dict[int, list[tuple[int, int]]] = {}
    for (e, u), c in counts.items():
        rows.setdefault(e, []).append((-c, u))
    expected = [(u, e, -c) for e in sorted(rows) for c, u in sorted(rows[e])[:k]]
    got = list(zip(nbr.tolist(), ego.tolist(), weight.long().tolist(), strict=True))
    assert got == expected
    assert tuple(ns["emb"].shape) == (128, 64)


@pytest.mark.slow
def test_custom_model_snippet_is_one_class_and_one_row():
    from pyg_multisage import experiment as ex

    try:
        ns = runpy.run_path(
            str(DOCS / "snippets" / "custom_model.py"), run_name="snippet"
        )
        spec = ex.REGISTRY["mean"]
        assert isinstance(spec.neighbors, ex.ContextualWalks)
        result = ns["result"]
        assert result.embeddings.shape == (400, 128)
        assert 0.0 < result.metrics["MRR"] <= 1.0
        assert isinstance(result.model.encoder, ns["MeanNeighborEncoder"])
    finally:
        ex.REGISTRY.pop("mean", None)
