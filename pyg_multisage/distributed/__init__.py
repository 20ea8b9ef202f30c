"""Scaling out: partitioned walks over Ray actors (optional ``[ray]`` extra).

Nothing here imports Ray at import time; the functions that need it import it
when called and say how to install it when it is missing.
"""
