"""Run the installed `gentool` command in processes forked from one that has already imported
its third-party libraries (torch, Hydra, numpy, ...), instead of a fresh interpreter each time.

A fresh `gentool` process spends seconds importing those libraries before it looks at its
arguments; the command-line tests run a hundred of them. Each command here is still a process of
its own (its exit status, its stderr at the file-descriptor level, its file locks and its own
gentool state are real): the server forks, and the child sets its working directory,
environment and argv, then runs what the `gentool` console script runs. gentool itself is never
imported by the server, so every child imports it afresh from the installed wheel, with its own
start time and run tag.

Variables that a process reads only while it starts (PYTHONPATH, the OpenMP thread count, ...)
cannot change in a forked child: `run` starts a fresh process whenever a call asks for values of
them other than the server's. Outside Linux (macOS frameworks are not safe to use in a forked
child) every command starts a fresh process.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

# Read at interpreter start or when a preloaded library loads: a child cannot take other values.
STARTUP_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONHASHSEED", "PYTHONSAFEPATH",
                     "PYTHONNOUSERSITE", "PYTHONUSERBASE", "PYTHONWARNINGS",
                     "PYTHONDONTWRITEBYTECODE", "PYTHONOPTIMIZE", "PYTHONUTF8", "PYTHONIOENCODING",
                     "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "LD_LIBRARY_PATH", "LD_PRELOAD")

# What the `gentool` commands import from outside gentool, in import order; each is optional.
PRELOAD = ("numpy", "scipy", "sklearn", "PIL.Image", "yaml", "omegaconf", "hydra", "hydra.main",
           "hydra._internal.utils", "hydra._internal.config_loader_impl", "hydra.utils",
           "hydra.core.utils", "hydra_plugins.hydra_joblib_launcher",
           "hydra_plugins.hydra_submitit_launcher", "tqdm", "torch", "torch.nn",
           "torch.distributed", "torch.utils.data", "torchvision", "torch.utils.tensorboard",
           "tensorboard")

SERVER = r'''
import atexit, importlib, json, os, sys, threading, traceback

for name in PRELOAD:
    try:
        importlib.import_module(name)
    except Exception:
        pass
assert "gentool" not in sys.modules, "the server must not import gentool"
requests, replies = sys.stdin.buffer, sys.stdout.buffer
replies.write(b"ready\n")
replies.flush()


def child(request):
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = [request["gentool"], *request["args"]]
    sys.path[0] = os.path.dirname(request["gentool"])   # a script's folder comes first
    # What the console script runs, and what the interpreter does with how it ends.
    try:
        from gentool.cli import main
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    # The interpreter's own ending: wait for the threads (and run what threading's exit hooks
    # hold: joblib's workers stop there), then the atexit functions, then flush.
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


for line in requests:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            child(request)   # ends the process
        finally:             # a child never returns to this loop, even when its set-up fails
            traceback.print_exc()
            os._exit(70)
    replies.write(f"{pid}\n".encode())
    replies.flush()
    _, status = os.waitpid(pid, 0)
    replies.write(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    replies.flush()
'''


class ForkedGentool:
    """A server process that forks one child per `run`; `run` has subprocess.run's result."""

    def __init__(self, gentool: str, env: dict[str, str], folder: Path):
        self.gentool, self.env, self.folder = gentool, env, folder
        self.server, self.calls = None, 0
        if not sys.platform.startswith("linux"):
            return
        code = f"PRELOAD = {PRELOAD!r}\n{SERVER}"
        self.server = subprocess.Popen([sys.executable, "-c", code], cwd=folder, env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._reply(timeout=300) == "ready", "the gentool fork server did not start"

    def _reply(self, timeout: float) -> str:
        ready, _, _ = select.select([self.server.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
        line = self.server.stdout.readline()
        assert line, f"the gentool fork server ended (status {self.server.poll()})"
        return line.decode().strip()

    def forkable(self, env: dict[str, str]) -> bool:
        return self.server is not None and all(env.get(name) == self.env.get(name)
                                               for name in STARTUP_VARIABLES)

    def run(self, args, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        env = self.env if env is None else env
        args = [str(arg) for arg in args]
        if not self.forkable(env):
            return subprocess.run([self.gentool, *args], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=timeout)
        self.calls += 1
        out = self.folder / f"{self.calls}.out"
        err = self.folder / f"{self.calls}.err"
        request = {"gentool": self.gentool, "args": args, "cwd": str(cwd), "env": env,
                   "stdout": str(out), "stderr": str(err)}
        self.server.stdin.write(json.dumps(request).encode() + b"\n")
        self.server.stdin.flush()
        pid = int(self._reply(timeout=60))
        started = time.monotonic()
        try:
            status = int(self._reply(timeout=timeout))
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            self._reply(timeout=60)
            raise subprocess.TimeoutExpired([self.gentool, *args], time.monotonic() - started,
                                            out.read_text(), err.read_text())
        result = subprocess.CompletedProcess([self.gentool, *args], status,
                                             out.read_text(errors="replace"),
                                             err.read_text(errors="replace"))
        out.unlink()
        err.unlink()
        return result

    def close(self) -> None:
        if self.server is None:
            return
        self.server.stdin.close()
        try:
            self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
