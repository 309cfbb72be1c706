"""A quiet TensorFlow start: drops the known start-up notices, keeps the rest.

TensorFlow writes several notices to standard error while it loads, before
its logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot silence them: the
oneDNN notice, "All log messages before absl::InitializeLog()", and, on
machines without a GPU driver, "Could not find cuda drivers" and "failed call
to cuInit". `start_tensorflow` loads TensorFlow and enumerates its devices
with standard error captured, then writes back every captured line that is
not one of those notices. TFKLGAN_VERBOSE=1 shows everything.
"""

import os
import sys
import tempfile

NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "To enable the following instructions",
    "This TensorFlow binary is optimized",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning",
)


def is_noise(line):
    return any(marker in line for marker in NOISE)


def start_tensorflow():
    """Imports TensorFlow and lists its devices, dropping the start-up notices."""
    if os.environ.get("TFKLGAN_VERBOSE") or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines()
                    if line.strip() and not is_noise(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def quiet_python_logs():
    """Hides absl's and TensorFlow's Python INFO lines in the scripts (such as
    "Sharding callback duration" at every checkpoint), unless --verbosity or
    TFKLGAN_VERBOSE=1 asks for them."""
    from absl import flags, logging
    asked = "verbosity" in flags.FLAGS and flags.FLAGS["verbosity"].present
    if not (asked or os.environ.get("TFKLGAN_VERBOSE")):
        logging.set_verbosity(logging.WARNING)
