"""One Ray session for every test of this folder that needs it (Ray starts
in seconds on an idle machine; far longer on a loaded one), and a small
graph saved as a memory-mappable CSR."""

from __future__ import annotations

import os

import pytest

from pyg_multisage.datasets import synthetic_multipartite
from pyg_multisage.graph import HeteroCSR


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    pytest.importorskip("pyarrow")
    # Workers must import this checkout of the package.
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, path) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def graph():
    return synthetic_multipartite(num_targets=300, num_contexts=30, seed=0)


@pytest.fixture(scope="session")
def csr_dirs(graph, tmp_path_factory):
    """``(directed, undirected)`` saved CSR folders of :func:`graph`."""
    root = tmp_path_factory.mktemp("csr")
    HeteroCSR.from_data(graph).save(root / "directed")
    HeteroCSR.from_data(graph, undirected=True).save(root / "undirected")
    return root / "directed", root / "undirected"
