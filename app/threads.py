"""How the server's compute threads share the CPU: OpenMP's threads wait for work asleep.

The server shares this machine's cores with the visitor's browser (when both run here) and with
its other sessions. A spinning OpenMP thread holds a core the browser or another session
needed, and a thread preempted inside a parallel region leaves the other spinning at its
barrier. With the browser drawing the page beside it, the first screen's 18 maps took 2.0-2.1 s
asleep instead of 3.1-3.6 s (the process's CPU time 1.9-2.0 s instead of 3.6-4.3 s); a lone
computation with nothing beside it takes about 20 % longer asleep, so the command line keeps
OpenMP's default. libgomp reads ``OMP_WAIT_POLICY`` once, when torch loads it: the server sets
it before anything imports torch (``app/main.py``), and an operator's own setting stays.
"""
from __future__ import annotations

import os

SERVER_OMP_WAIT_POLICY = "PASSIVE"


def let_openmp_threads_sleep() -> None:
    """Ask OpenMP's threads to wait asleep, unless the operator set ``OMP_WAIT_POLICY``; only
    effective before torch is first imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", SERVER_OMP_WAIT_POLICY)
