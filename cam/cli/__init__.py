"""``python -m cam`` (the ``scalecam`` command): an application on top of the libraries.

``main`` builds the parser; one module per command (``figure``, ``evaluate``, ``report``,
``bench``) and the argument types and groups they share (``args``). Nothing in ``cam``,
``scaled_models`` or ``safe_io`` imports this package; the serve benchmark (``benchmarks``, run
from a checkout) is imported only when ``bench --serve`` runs.
"""
