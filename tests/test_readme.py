"""The README's commands work as written, offline, in a copy of the repository.

Every command in the README's bash blocks must match one rule below: run it
(with tiny settings appended where it would train for minutes), expect the
fast offline failure that names the flag to use, or skip it with the reason.
A README command that no rule knows fails the test, so new commands are
checked from the day they are written.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import warm_scripts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_TRAIN = ["--steps=6", "--width=4", "--latent_dim=8", "--sample_every=3",
              "--checkpoint_every=3", "--verbose=0"]

# (pattern, action, detail): "run" appends `detail` (a list of arguments);
# "offline" expects exit code 2 and an error matching `detail`; "help" expects
# `detail` in the help text; "skip" says why.
# The quickstart training runs first: the commands after it use its run.
RULES = [
    (r"^make (demo|test)$", "skip", "creates a virtual environment; CI runs the same steps"),
    (r"^make tensorboard$", "skip", "starts a server"),
    (r"^make (export|sample|evaluate)$", "make", None),
    (r"^python3 -m venv", "skip", "creates a virtual environment"),
    (r"^pip install", "skip", "installs the package (CI does)"),
    (r"^tensorboard ", "skip", "starts a server"),
    (r"^python -m pytest", "skip", "the test suite itself"),
    (r"^python scripts/train\.py --flagfile=configs/quickstart\.flags( --cpu_devices=2 "
     r"--strategy=mirrored --logdir=runs/mirrored)?$", "run", TINY_TRAIN),
    (r"^python scripts/train\.py --help$", "help", "Objective:"),
    # "Your own data": a folder the test writes (data/faces, 128 px), and a start
    # from the quickstart run
    (r"^python scripts/train\.py --dataset=images:data/faces --image_size=128 ", "run",
     TINY_TRAIN + ["--batch_size=4"]),
    (r"^python scripts/train\.py --flagfile=configs/quickstart\.flags --init_from=runs/quickstart ",
     "run", TINY_TRAIN),
    (r"^python scripts/train\.py --flagfile=configs/klgan\.flags", "offline", r"--celeba_dir"),
    (r"^python scripts/(export|sample)\.py ", "run", []),
    (r"^python scripts/evaluate\.py --logdir=runs/klgan ", "skip", "needs the CelebA run"),
    (r"^python scripts/evaluate\.py --(generated|real)=", "run", ["--noprogress"]),
    (r"^python scripts/evaluate\.py --saved_model=exports/klgan ", "skip",
     "needs the CelebA export"),
    (r"^python scripts/reproduce\.py \w+( |$)(?!.*--protocol)", "offline",
     r"--celeba_dir|--data_dir"),
    (r"^python scripts/reproduce\.py .*--protocol=cpu", "skip",
     "the CPU proxies train for minutes to hours (docs/results/ holds their results)"),
    (r"^python scripts/search\.py table1_search$", "skip",
     "a search worker trains for hours (docs/results/table1_search holds its trials)"),
    (r"^python scripts/search\.py table1_search --report_only$", "offline",
     r"has not been declared there"),
    (r"^optuna-dashboard ", "skip", "starts a server"),
    (r"^python scripts/benchmark_pytorch\.py ", "skip",
     "needs PyTorch (not a dependency) and times both frameworks for many minutes"),
    (r"^python scripts/benchmark\.py ", "run",
     ["--widths=4", "--jit=false", "--repeats=1", "--steps=1", "--warmup=1"]),
]


def readme_commands():
    """The commands of the README's bash blocks, comments dropped and
    continuation lines joined."""
    text = open(os.path.join(ROOT, "README.md")).read()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def rule_of(command):
    matches = [(action, detail) for pattern, action, detail in RULES
               if re.search(pattern, command)]
    assert len(matches) == 1, f"{len(matches)} rules match README command {command!r}"
    return matches[0]


def test_every_readme_command_has_a_rule():
    commands = readme_commands()
    assert len(commands) > 15
    for command in commands:
        rule_of(command)


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    copy = tmp_path_factory.mktemp("repo") / "tfklgan"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "results", "exports", "samples", "__pycache__",
        "checkpoints", "train", "best", "*.egg-info"))
    return copy


@pytest.fixture(scope="module")
def fresh_home():
    """A new HOME for each test, its ~/.cache/tfklgan empty but for the fused
    kernels' library, built once (its build is tested in tests/test_native.py):
    every command still decodes its data and computes its references anew.
    TFKLGAN_CACHE points there too, whatever the caller's environment says."""
    from tfklgan import native
    library = native.build_library() if native.unavailable_reason() is None else None

    def make(tmp_path):
        cache = tmp_path / ".cache" / "tfklgan"
        os.makedirs(cache)
        if library:
            shutil.copy2(library, cache / os.path.basename(library))
        return {"HOME": str(tmp_path), "TFKLGAN_CACHE": str(cache)}
    return make


def _run(args, cwd, env_extra=None):
    """Runs a command; the project's scripts fork from a warm interpreter
    (tests/warm_scripts.py)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env_extra or {}))
    return warm_scripts.run(args, str(cwd), env)


def make_recipe(target, venv, cwd, env):
    """(the process of `make -n TARGET`, its commands one a line) with the
    Makefile's venv and interpreter. Under a parent make (`make test` runs
    this suite) make would print "make[1]: Entering directory ..." among the
    commands: --no-print-directory keeps it out."""
    variables = [f"VENV={venv}", f"PYTHON={sys.executable}"]
    recipe = subprocess.run(["make", "--no-print-directory", "-n", target, *variables],
                            cwd=str(cwd), env=dict(os.environ, **env), capture_output=True,
                            text=True)
    return recipe, re.sub(r"\\\n\s*", " ", recipe.stdout).splitlines()


def _make(target, venv, cwd, env):
    """`make TARGET`: make expands the recipe (`make -n`), and its commands run
    one by one, the scripts warm, the first failure ending the target as make
    would."""
    recipe, commands = make_recipe(target, venv, cwd, env)
    if recipe.returncode != 0:
        return recipe
    proc = recipe
    for command in commands:
        proc = _run(shlex.split(command), cwd, env)
        if proc.returncode != 0:
            break
    return proc


def test_make_targets_expand_to_commands_under_a_parent_make(tmp_path):
    """`make test` runs this suite under make, whose environment (MAKELEVEL,
    MAKEFLAGS) makes a child make print "make[1]: Entering directory": those
    lines were once run as commands. Every make target the README names
    expands to commands alone under a real parent make's environment."""
    parent = subprocess.run(["make", "-f", "-"], input="all:\n\t@env\n",
                            cwd=str(tmp_path), capture_output=True, text=True, check=True)
    env = dict(line.split("=", 1) for line in parent.stdout.splitlines() if "=" in line)
    assert int(env.get("MAKELEVEL", "0")) >= 1  # 2 and more where this suite runs under make
    targets = {c.split()[1] for c in readme_commands() if re.match(r"^make \w+$", c)}
    assert {"demo", "test", "export", "sample", "evaluate"} <= targets
    for target in sorted(targets):
        recipe, commands = make_recipe(target, tmp_path / "venv", ROOT, env)
        assert recipe.returncode == 0, recipe.stderr
        assert commands and not [c for c in commands if c.startswith("make")], (target,
                                                                               commands)


# Commands that use the quickstart run (trained first in their test) or what
# the commands before them wrote; the others run in a test of their own, so
# that the two halves can run in parallel.
USES_THE_QUICKSTART_RUN = r"(runs|exports|samples)/quickstart|stats/|^make |quickstart\.flags$"


def _run_commands(commands, repo_copy, tmp_path, env):
    """Runs each command by its rule in `env` (fresh_home's); returns
    [(command, ok, stderr tail)]."""
    venv = tmp_path / "venv"      # the Makefile's, with the install marked done
    os.makedirs(venv / "bin", exist_ok=True)
    (venv / ".installed").touch()
    results = []
    for command in commands:
        action, detail = rule_of(command)
        if action == "skip":
            continue
        words = shlex.split(command)
        if action == "make":
            proc = _make(words[1], venv, repo_copy, env)
        else:
            proc = _run([sys.executable, *words[1:], *(detail if action == "run" else [])],
                        repo_copy, env)
        if action == "help":
            ok = proc.returncode == 0 and detail in proc.stdout and "--method" in proc.stdout
        elif action == "offline":
            ok = proc.returncode == 2 and re.search(detail, proc.stderr) and \
                "Traceback" not in proc.stderr
        else:
            ok = proc.returncode == 0
        results.append((command, ok, proc.stderr[-1500:]))
    return results


@pytest.mark.slow
def test_readme_commands_on_the_quickstart_run_work_as_written_offline(repo_copy, tmp_path,
                                                                      fresh_home):
    commands = [c for c in readme_commands() if re.search(USES_THE_QUICKSTART_RUN, c)]
    first = [c for c in commands if c.startswith("python") and c.endswith("quickstart.flags")]
    assert len(first) == 1  # the quickstart training, which the others use
    results = _run_commands(first + [c for c in commands if c not in first], repo_copy,
                            tmp_path, fresh_home(tmp_path))
    failed = [(c, e) for c, ok, e in results if not ok]
    assert not failed, failed
    assert len(results) >= 9
    assert os.path.isfile(repo_copy / "runs" / "quickstart" / "scores.json")  # make evaluate


@pytest.mark.slow
def test_the_other_readme_commands_work_as_written_offline(repo_copy, tmp_path, fresh_home):
    commands = [c for c in readme_commands() if not re.search(USES_THE_QUICKSTART_RUN, c)]
    from tfklgan.images import save_png
    rng = np.random.default_rng(0)
    for index in range(16):  # "Your own data": a folder of 128 px images
        save_png(str(repo_copy / "data" / "faces" / f"{index:02d}.png"),
                 rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    results = _run_commands(commands, repo_copy, tmp_path, fresh_home(tmp_path))
    failed = [(c, e) for c, ok, e in results if not ok]
    assert not failed, failed
    assert len(results) >= 8


def readme_python_blocks():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.slow
def test_readme_training_from_python_runs_as_written(repo_copy, tmp_path, fresh_home):
    block = next(b for b in readme_python_blocks() if "TrainConfig.from_flat" in b)
    script = tmp_path / "from_python.py"
    script.write_text(block + "\nassert resumed.step == 40 and result.step == 20\n")
    proc = _run([sys.executable, str(script)], repo_copy, fresh_home(tmp_path))
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert proc.stdout.split()[:3] == ["klgan", "8e-05", "20"]
