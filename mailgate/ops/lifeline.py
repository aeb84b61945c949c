"""Child processes that die with their parent.

A supervisor killed with SIGKILL (OOM killer, ``kill -9``, a crashed box's watchdog)
runs no cleanup. Its roles would live on as orphans, holding the SMTP port so the
next ``mailgate run`` cannot bind it and working the same rows as the new roles.
On Linux the kernel can deliver a signal to a child when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere this module does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


# Looked up once, in the parent: a pre-exec hook runs in a forked child where loading
# a library is not safe.
_prctl = _load_prctl()


def die_with_parent(parent_pid: int) -> None:
    """Make the kernel SIGKILL this process when ``parent_pid`` (its parent) dies.

    If the parent died before the request was made, there is nobody left to signal us
    (we were re-parented already), so we check and die at once instead.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)  # no cleanup: the parent is gone and the work will be redone


def pre_exec_for(parent_pid: int, *, nice: int = 0) -> Callable[[], None]:
    """A ``subprocess.Popen(preexec_fn=...)`` hook: the exec'd child dies with us (and
    runs ``nice`` steps nicer).

    The death signal survives ``execve`` and belongs to the thread that forked, so
    start children from a thread that lives as long as the parent (the main one).
    """

    def hook() -> None:
        die_with_parent(parent_pid)
        if nice:
            os.nice(nice)

    return hook
