import subprocess
import sys


def test_core_and_cli_import_neither_ray_nor_faiss():
    """The extras are imported on first use only (pyarrow may come with
    torch_geometric's own imports, so it is not checked here)."""
    code = (
        "import sys, pyg_multisage, pyg_multisage.cli, pyg_multisage.distributed, "
        "pyg_multisage.distributed.ann; "
        "print(sorted(m for m in ('ray', 'faiss') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
