"""`python -m mcp_hub.upstream.launcher COMMAND ARGS...`: runs a stdio upstream so it dies with the hub.

The SDK starts a stdio server in its own session (so the hub can kill the whole group on shutdown); a
hub killed with SIGKILL never gets to do that. On Linux this launcher asks the kernel to send the child
SIGKILL when its parent (the hub) dies, then replaces itself with the real command (exec keeps the
setting). Elsewhere it simply execs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m mcp_hub.upstream.launcher COMMAND [ARGS...]")
    expected_parent = os.getppid()
    _die_with_parent()
    # The parent may have died between spawning us and the prctl call: then no signal would ever come.
    if os.getppid() != expected_parent:
        sys.exit(1)
    os.execvp(argv[0], argv)  # noqa: S606 - running the configured upstream command is the point


if __name__ == "__main__":
    main(sys.argv[1:])
