"""The warm script processes the end-to-end tests use behave as cold ones."""

import os
import signal
import subprocess
import sys
import time

import warm_scripts

TOY = '''
import os, sys, time
print("argv", sys.argv[1:], "cwd", os.getcwd(), "path0", sys.path[0])
print("run", os.environ.get("TF_CONFIG"), "main", __name__)
print("to stderr", file=sys.stderr)
if "--raise" in sys.argv:
    raise ValueError("bad toy")
if "--sleep" in sys.argv:
    open("started", "w").close()
    time.sleep(60)
sys.exit(int(sys.argv[1]))
'''


def _toy(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "toy.py").write_text(TOY)
    return [sys.executable, "scripts/toy.py"]


def test_a_warm_script_sees_and_returns_what_a_cold_one_does(tmp_path):
    toy = _toy(tmp_path)
    env = dict(os.environ, TF_CONFIG="{}")
    cold = subprocess.run([*toy, "3"], cwd=tmp_path, env=env, capture_output=True, text=True)
    warm = warm_scripts.run([*toy, "3"], str(tmp_path), env)
    started = warm_scripts.popen([*toy, "0"], str(tmp_path), env)
    assert isinstance(started, warm_scripts.WarmProcess) and started.wait(timeout=60) == 0
    assert (warm.returncode, warm.stdout, warm.stderr) == \
        (cold.returncode, cold.stdout, cold.stderr) == (3, cold.stdout, "to stderr\n")
    assert "run {} main __main__" in warm.stdout
    raised = warm_scripts.run([*toy, "0", "--raise"], str(tmp_path), env)
    assert raised.returncode == 1 and raised.stderr.rstrip().endswith("ValueError: bad toy")
    assert "Traceback" in raised.stderr


def test_a_warm_script_takes_signals_at_its_own_pid(tmp_path):
    toy = _toy(tmp_path)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        proc = warm_scripts.popen([*toy, "0", "--sleep"], str(tmp_path), dict(os.environ))
        deadline = time.time() + 60
        while not (tmp_path / "started").exists() and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == -signum
        os.remove(tmp_path / "started")
