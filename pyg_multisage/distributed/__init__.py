"""Scaling out (optional ``[ray]`` extra): data-parallel training on Ray
Train with negatives gathered across workers
(:mod:`~pyg_multisage.distributed.train`,
:mod:`~pyg_multisage.distributed.negatives`).

Nothing here imports Ray at import time; the functions that need it import
it when called and say how to install it when it is missing.
"""
