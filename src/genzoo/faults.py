"""Fault injection for the tests: ``GENZOO_FAULT=POINT:N`` kills the process with SIGKILL (as a
power cut or ``kill -9`` would) the N-th time the code reaches the named point. Points:
``step`` (after a training step, before it is logged), ``log`` (after a step is logged),
``weights`` (between writing model.safetensors and checkpoint.pt), ``checkpoint`` (after a
checkpoint) and ``write`` (an atomic write's temporary file is complete but not yet renamed).
Without the variable, :func:`reach` does nothing."""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def reach(point: str) -> None:
    spec = os.environ.get("GENZOO_FAULT")
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
