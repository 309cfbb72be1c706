"""The project's scripts run in processes forked from a warm interpreter.

`import tensorflow` takes 7-13 s on the 2-core CI machines, and the suite
starts about 80 script processes. Here a server process imports tfklgan (and
with it TensorFlow) once, without running a TensorFlow op, then forks one
child per script run. The child is a real process: the script runs as
`__main__` with its own argv, working directory and environment, writes to
its own stdout and stderr, takes signals at its own pid and ends with the
script's exit code (or -signal, as `subprocess` reports it). What it does
not repeat is the interpreter's start and the imports. So tests of what
happens at import (start-up notices, TF_ENABLE_ONEDNN_OPTS, ONEDNN_MAX_CPU_ISA,
the native kernels' build) run their scripts cold, with `subprocess`.

A server serves one environment: the variables are read at import (HOME for
the cache folder, TF_CPP_MIN_LOG_LEVEL), so another environment gets its own
server; only RUNTIME variables may differ per run.

`python warm_scripts.py` is the server: it reads one JSON request a line
from stdin, answers with the child's pid, and writes each child's exit status
to the request's status file when it ends.
"""

import atexit
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

# read when a script runs, not when tfklgan is imported
RUNTIME = ("TF_CONFIG", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "TINY_SEARCH_STEPS")
PRELOAD = ("tfklgan", "tfklgan.cli", "tfklgan.training", "tfklgan.evaluation",
           "tfklgan.run_directory", "tfklgan.export", "tfklgan.reproduce", "absl.app")
MAX_SERVERS = 2


# the tests' own script wrappers that run a project script (warm like it)
TEST_WRAPPERS = ("tiny_search.py",)


def _warm_script(args, cwd):
    """The script path when `args` is `python <one of scripts/*.py> ...` or a
    test wrapper of one (TEST_WRAPPERS)."""
    if len(args) < 2 or args[0] != sys.executable or not args[1].endswith(".py"):
        return None
    path = os.path.abspath(os.path.join(cwd, args[1]))
    folder, name = os.path.split(path)
    warm = (os.path.basename(folder) == "scripts"
            or (folder == os.path.dirname(os.path.abspath(__file__)) and name in TEST_WRAPPERS))
    return path if warm and os.path.isfile(path) else None


class _Server:
    def __init__(self, env):
        self.log = tempfile.NamedTemporaryFile(prefix="tfklgan-warm-", suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)

    def start(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"the warm script server ended (exit {self.proc.returncode}): "
                               + open(self.log.name).read()[-3000:])
        return int(line)

    def close(self):
        """Ends the server once the children it runs have ended."""
        self.proc.stdin.close()
        os.remove(self.log.name)


_servers = {}
# the children's output and status files, removed when this process ends
_files = tempfile.mkdtemp(prefix="tfklgan-warm-")


@atexit.register
def _close_all():
    for server in _servers.values():
        server.close()
    shutil.rmtree(_files, ignore_errors=True)


def _server(env):
    key = tuple(sorted((k, v) for k, v in env.items() if k not in RUNTIME))
    if key not in _servers:
        while len(_servers) >= MAX_SERVERS:
            _servers.pop(next(iter(_servers))).close()
        _servers[key] = _Server({k: v for k, v in env.items() if k not in RUNTIME})
    return _servers[key]


class WarmProcess:
    """A script's process forked from a warm server, with the parts of
    `subprocess.Popen` the tests use."""

    def __init__(self, script, args, cwd, env, capture):
        self._dir = tempfile.mkdtemp(dir=_files)
        self._paths = {name: os.path.join(self._dir, name) for name in ("out", "err", "status")}
        if not capture:
            self._paths.update(out=os.devnull, err=os.devnull)
        self.args = [sys.executable, script, *args]
        self.returncode = None
        self.pid = _server(env).start({"script": script, "argv": list(args), "cwd": cwd,
                                       "env": env, **self._paths})

    def poll(self):
        if self.returncode is None and os.path.exists(self._paths["status"]):
            self.returncode = int(open(self._paths["status"]).read())
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.time() + timeout
        while self.poll() is None:
            if deadline is not None and time.time() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum):
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self):
        self.send_signal(15)

    def kill(self):
        self.send_signal(9)

    def communicate(self, timeout=None):
        self.wait(timeout)
        texts = []
        for name in ("out", "err"):
            path = self._paths[name]
            texts.append(None if path == os.devnull else
                         open(path, errors="replace").read())
        shutil.rmtree(self._dir, ignore_errors=True)
        return tuple(texts)


def popen(args, cwd, env, capture=True):
    """`subprocess.Popen(args, ...)` with text stdout and stderr (or none),
    warm where `args` runs one of the project's scripts."""
    script = _warm_script(args, cwd)
    if script is None:
        pipe = subprocess.PIPE if capture else subprocess.DEVNULL
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=pipe, stderr=pipe, text=True)
    return WarmProcess(script, args[2:], cwd, env, capture)


def run(args, cwd, env, timeout=600):
    """`subprocess.run(args, capture_output=True, text=True, ...)`, warm
    where `args` runs one of the project's scripts."""
    proc = popen(args, cwd, env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


# the server ------------------------------------------------------------------

def _child(request):
    """Runs the script in the forked child; never returns."""
    import runpy
    import traceback
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["out"]), (2, request["err"])):
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, fd)
            os.close(handle)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["script"], *request["argv"]]
        sys.path[0] = os.path.dirname(request["script"])
        try:
            runpy.run_path(request["script"], run_name="__main__")
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
        except BaseException:  # noqa: B036  as the interpreter does at the top level
            traceback.print_exc()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001  a closed stream: nothing left to write
                pass
        os._exit(code)


def _write_status(path, status):
    code = os.waitstatus_to_exitcode(status)
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as handle:
            handle.write(str(code))
        os.replace(tmp, path)
    except FileNotFoundError:  # the tests' process ended and removed its files
        pass


def serve():
    import importlib
    import warnings
    warnings.filterwarnings("ignore", "This process .* is multi-threaded")
    for name in PRELOAD:
        importlib.import_module(name)
    running = {}
    stdin = sys.stdin
    while True:
        ready, _, _ = select.select([stdin], [], [], 0.02)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            _write_status(running.pop(pid), status)
        if not ready:
            continue
        line = stdin.readline()
        if not line:
            break
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        running[pid] = request["status"]
        print(pid, flush=True)
    for pid, status_path in running.items():
        _, status = os.waitpid(pid, 0)
        _write_status(status_path, status)


if __name__ == "__main__":
    serve()
