"""The comparison table of several runs: the metric columns of MultiSage
Table 2, mean ± std over seeds (:func:`aggregate`) and a plain-text table
(:func:`format_table`)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

METRIC_COLUMNS = (
    "MRR",
    "REC@1",
    "REC@10",
    "DC+",
    "DC*",
    "DE+",
    "DE*",
    "INT",
    "UNI",
    "JAC",
)


def aggregate(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (``0`` for one run) of each metric
    over runs, e.g. seeds: ``{metric: {"mean": ..., "std": ...}}``, the
    cells :func:`format_table` prints."""
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        out[key] = {"mean": statistics.fmean(values), "std": std}
    return out


def format_table(
    rows: dict[str, dict[str, Any]], columns: Sequence[str] = METRIC_COLUMNS
) -> str:
    """A plain-text table of MultiSage Table 2's columns, one row per model.
    A cell is a float or a ``{"mean": ..., "std": ...}`` dict."""

    def cell(v: Any, col: str) -> str:
        fmt = "{:.2f}" if col in ("INT", "UNI") else "{:.4f}"
        if isinstance(v, dict):
            return f"{fmt.format(v['mean'])}±{fmt.format(v['std'])}"
        return fmt.format(v)

    head = ["model", *columns]
    body = [[name, *(cell(r[c], c) for c in columns)] for name, r in rows.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = lambda xs: "  ".join(
        str(x).rjust(w) for x, w in zip(xs, widths, strict=True)
    )
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])
