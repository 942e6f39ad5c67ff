"""A fork server for the multi-process tests: imports SUP once, then forks one ``sup worker`` per request.

Starting a worker is mostly importing (about 0.8 s of CPU of the ~1 s a process needs to be ready); the
cluster scenarios start a whole deployment per test, so the tests ask this process to fork an
already-imported interpreter instead. A child is exactly ``python -m workers.cli ARGV`` with its own
environment, working directory and log file; it gets a fresh reactor (the imports install one, and an
epoll instance or waker pipe must not be shared between processes).

Protocol (JSON lines on stdin/stdout): ``{"spawn": [argv], "env": {...}, "cwd": dir, "log": path}`` ->
``{"pid": n}``; ``{"poll": pid}`` -> ``{"code": int|null}`` (null: still running). EOF on stdin: every child
still running is killed and the server exits. ``ForkedProcess`` gives the Popen methods the harness uses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _preload() -> None:
    import importlib

    import workers.cli
    from workers.roles import ROLE_NAMES, get_role

    workers.cli._load_extra_commands()
    for role in ROLE_NAMES:
        try:
            modules = get_role(role).modules
        except KeyError:
            continue
        for name in modules:
            importlib.import_module(name)
    for name in ("txredisapi", "psycopg2", "workers.replication", "workers.internal_api"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _fresh_reactor() -> None:
    """In a child: a new epoll instance and waker for the reactor the imports installed (never run here)."""
    from twisted.internet import reactor

    r: Any = reactor
    for fd_owner in (getattr(r, "_poller", None),):
        try:
            fd_owner.close()  # type: ignore[union-attr]
        except Exception:
            pass
    waker = getattr(r, "waker", None)
    for attr in ("i", "o"):
        fd = getattr(waker, attr, None)
        if isinstance(fd, int):
            try:
                os.close(fd)
            except OSError:
                pass
    type(r).__init__(r)


def _child(req: dict[str, Any]) -> None:
    os.setsid()
    log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(devnull)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    import random

    random.seed()
    _fresh_reactor()
    sys.argv = ["sup", *req["spawn"]]
    code = 1
    try:
        import workers.cli

        code = workers.cli.main(req["spawn"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    _preload()
    codes: dict[int, int] = {}
    live: set[int] = set()
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        if "spawn" in req:
            pid = os.fork()
            if pid == 0:
                _child(req)
            live.add(pid)
            reply: dict[str, Any] = {"pid": pid}
        else:
            pid = int(req["poll"])
            while True:  # reap whatever finished
                try:
                    done, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if done == 0:
                    break
                live.discard(done)
                codes[done] = os.waitstatus_to_exitcode(status)
            reply = {"code": codes.get(pid)}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    for pid in live:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ForkServer:
    """The test side: one fork server per test session (started on first use)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.integration.multiprocess.forkserver"], cwd=REPO,
                                     env={**os.environ, "PYTHONPATH": REPO}, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lock = threading.Lock()

    def call(self, req: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server exited")
        return dict(json.loads(line))

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str, log: str) -> ForkedProcess:
        return ForkedProcess(self, self.call({"spawn": argv, "env": env, "cwd": cwd, "log": log})["pid"])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class ForkedProcess:
    """The subset of ``subprocess.Popen`` the cluster harness uses, for a child of the fork server."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.call({"poll": self.pid})["code"]
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(["sup worker"], timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


if __name__ == "__main__":
    serve()
