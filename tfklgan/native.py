"""Fused CPU kernels, compiled on first use, bit for bit the ops they replace.

`mish(x)` runs Mish (x tanh(softplus(x)), Misra 2019) and its gradient in one
pass each instead of TensorFlow's nine elementwise ops (Softplus, Tanh and Mul;
in the gradient three Muls, TanhGrad, Sigmoid and AddN). The kernels
(`kernels/mish.cc`) evaluate the same Eigen functions on the same values in
the same order, so with TensorFlow's x86-64 wheels (built without FMA, like
the kernels) training gives the same numbers to the last bit with or without
them (tests/test_native.py); they are faster because they read and write
memory once (docs/performance.md).

The library is compiled with the C++ compiler (`$CXX`, else g++ or c++)
against the installed TensorFlow's headers, without FMA contraction, into
`$TFKLGAN_CACHE` (default ~/.cache/tfklgan), once per TensorFlow version and
kernel source. Where that cannot be done (no compiler, not x86-64, a GPU
visible, a build error) the graph ops run instead, with the same results;
`TFKLGAN_NATIVE=0` turns the kernels off. Exports and XLA-compiled training
steps never contain them (`graph_ops_only`), so a SavedModel loads in plain
TensorFlow; trace a function of your own that XLA compiles (`jit_compile=True`)
within `graph_ops_only()` too. Second derivatives through Mish run on
TensorFlow's ops.
"""

import contextlib
import hashlib
import importlib.resources
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading

import keras
import tensorflow as tf

_SOURCE = "mish.cc"
_lock = threading.Lock()
_state = threading.local()
_loaded = {}  # "library": the loaded op module or None, once tried


def _isa_flag():
    """-mavx2 where the CPU has AVX2, else -mavx (TensorFlow's x86-64 wheels
    need AVX). Never FMA: TensorFlow's own kernels do not use it, and a fused
    multiply-add rounds differently."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle
                          if line.startswith("flags")), [])
    except OSError:
        flags = []
    return "-mavx2" if "avx2" in flags else "-mavx"


def _compiler():
    """The C++ compiler's path: $CXX, else g++, else c++; None if none is found."""
    found = (shutil.which(name) for name in (os.environ.get("CXX"), "g++", "c++") if name)
    return next((path for path in found if path), None)


def build_command(compiler, source, output):
    """The compiler command that builds `source` into the shared library `output`."""
    return ([compiler, "-O3", _isa_flag(), "-ffp-contract=off", "-fPIC", "-shared",
             "-w", source, "-o", output]
            + tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags())


def cache_dir():
    return os.environ.get("TFKLGAN_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "tfklgan")


def _library_path(source_text, command):
    """A cache path for this source, TensorFlow and command (without its output)."""
    key = hashlib.sha256("\n".join([source_text, tf.__version__, *command]).encode())
    return os.path.join(cache_dir(), f"tfklgan_kernels-{key.hexdigest()[:16]}.so")


def _build(compiler):
    """Compiles the kernels (unless cached) and returns the library's path.
    Concurrent builds each write a file of their own and move it into place."""
    source = importlib.resources.files("tfklgan") / "kernels" / _SOURCE
    text = source.read_text()
    with importlib.resources.as_file(source) as source_path:
        command = build_command(compiler, str(source_path), "OUT")
        path = _library_path(text, [flag for flag in command if flag != "OUT"])
        if os.path.isfile(path):
            return path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, partial = tempfile.mkstemp(suffix=".so.partial", dir=os.path.dirname(path))
        os.close(handle)
        try:
            command[command.index("OUT")] = partial
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                lines = (done.stderr or done.stdout).strip().splitlines()
                raise RuntimeError(f"{os.path.basename(compiler)} failed: "
                                   f"{lines[-1] if lines else done.returncode}")
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    return path


def build_library():
    """Compiles the kernels into `cache_dir()` unless they are there; returns the
    library's path. RuntimeError says why where they cannot be built."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"the fused CPU kernels cannot be built here: {reason}")
    return _build(_compiler())


def unavailable_reason():
    """Why the fused kernels cannot run in this process, or None if they can."""
    if os.environ.get("TFKLGAN_NATIVE", "1").lower() in ("0", "false", "off", "no"):
        return "turned off by TFKLGAN_NATIVE"
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return f"built only on x86-64 Linux, not {platform.system()} {platform.machine()}"
    if tf.config.list_physical_devices("GPU"):
        return "a GPU is visible (the kernels are CPU kernels)"
    if _compiler() is None:
        return "no C++ compiler (set CXX, or install g++)"
    return None


def library():
    """The loaded kernel library, or None where it cannot run (says why once,
    on stderr, when a build fails)."""
    with _lock:
        if "library" not in _loaded:
            _loaded["library"] = None
            if unavailable_reason() is None:
                try:
                    _loaded["library"] = tf.load_op_library(build_library())
                except (OSError, RuntimeError, tf.errors.OpError) as error:
                    print(f"tfklgan: fused CPU kernels unavailable, using TensorFlow's "
                          f"ops (same results): {error}", file=sys.stderr)
        return _loaded["library"]


@contextlib.contextmanager
def graph_ops_only(active=True):
    """Within the block (in this thread), if `active`, `mish` traces
    TensorFlow's own ops: for SavedModels that must load without tfklgan's
    kernels, and for XLA, which cannot compile them."""
    previous = getattr(_state, "graph_ops_only", False)
    _state.graph_ops_only = previous or active
    try:
        yield
    finally:
        _state.graph_ops_only = previous


def _slope(x):
    """Mish'(x) = t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x)), in graph ops."""
    t = tf.tanh(tf.math.softplus(x))
    return t + x * (1.0 - t * t) * tf.sigmoid(x)


def _fused_mish(kernels):
    @tf.custom_gradient
    def fused_mish(x):
        y, t = kernels.tfklgan_mish(x)

        @tf.custom_gradient
        def gradient(dy, x):
            # The kernel's gradient; differentiated again (R1-style penalties
            # through G, say), TensorFlow's ops take over.
            def second(g):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    slope = _slope(x)
                return g * slope, tape.gradient(slope, x, output_gradients=g * dy)

            return kernels.tfklgan_mish_grad(dy, x, t), second

        return y, lambda dy: gradient(dy, x)

    return fused_mish


def mish(x):
    """Mish of `x` (any shape): the fused kernels for float32 where they run,
    else keras.activations.mish; the values are the same."""
    x = tf.convert_to_tensor(x)
    kernels = None
    if x.dtype == tf.float32 and not getattr(_state, "graph_ops_only", False):
        kernels = library()
    if kernels is None:
        return keras.activations.mish(x)
    return _fused_mish(kernels)(x)
