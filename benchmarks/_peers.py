"""Where the peers live (``../shared/peers``: DGL's venv, ``make_pinboard.py``).

One lookup for every benchmark script; imports nothing heavy, so the
processes whose memory ``scale.py`` measures can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peers_dir() -> Path:
    """``$PYG_MULTISAGE_PEERS``, else ``../shared/peers`` of the checkout (or
    of its parent, for a git worktree one level deeper)."""
    env = os.environ.get("PYG_MULTISAGE_PEERS")
    if env:
        return Path(env)
    for up in (ROOT.parent, ROOT.parent.parent):
        if (up / "shared" / "peers").is_dir():
            return up / "shared" / "peers"
    return ROOT.parent / "shared" / "peers"
