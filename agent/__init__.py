"""Forest's investigator: an evaluation goes in, a grounded verdict comes out.

Library use::

    from agent import Investigator, investigate, gate

    verdict = investigate("ev-000123", store="forest-demo.duckdb")
    decision = gate(evaluation, store="forest-demo.duckdb")
"""

from __future__ import annotations

from agent._version import __version__

__all__ = ["Investigator", "__version__", "gate", "investigate"]


def __getattr__(name: str):  # lazy: importing the package must not pull in langgraph
    if name in ("Investigator", "investigate", "gate"):
        from agent import api

        return getattr(api, name)
    raise AttributeError(name)
