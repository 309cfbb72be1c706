"""The kernel fingerprint of a CPU run: what decides whether it repeats bit for bit.

TensorFlow's CPU kernels (oneDNN's, and Eigen's) block their sums by the
instruction set, the cache sizes and the thread count, and oneDNN also
dispatches by CPU vendor; GAN training amplifies a last-bit difference into
a different run. So a run repeats bit for bit only where every field below
is the same: CPU vendor, family and model, cache sizes, the instruction-set
extensions the kernels may use, the core count, oneDNN on or off, its ISA
cap (`ONEDNN_MAX_CPU_ISA`), and TensorFlow's version. Across fingerprints a
run is a different sample of the same training: compare it statistically
(`tfklgan.reproduce.verify`).

`current()` reads this machine's fingerprint; `compare(a, b)` says whether
two records are one fingerprint, and if not, which fields differ.
"""

import os
import platform

# The fields that make one fingerprint, in the order they are shown.
FIELDS = ("machine", "vendor", "cpu_family", "cpu_model", "caches", "isa", "cores", "onednn",
          "onednn_max_cpu_isa", "intra_op_threads", "tensorflow")
# Records made before the cache sizes were recorded are matched on the other
# fields (the caches follow from vendor, family and model).
LATER_FIELDS = ("caches",)


def _cpuinfo():
    """The first processor's block of /proc/cpuinfo ({} where there is none)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = (part.strip() for part in line.partition(":"))
                fields.setdefault(key, value)
    except OSError:
        pass
    return fields


def _caches():
    """{"L1d": "32K", "L1i": "32K", "L2": "512K", "L3": "32768K"} as the kernel
    reports them for CPU 0 ({} where sysfs has no cache information)."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    caches = {}
    try:
        entries = sorted(e for e in os.listdir(root) if e.startswith("index"))
    except OSError:
        return caches
    for entry in entries:
        def read(name, entry=entry):
            with open(os.path.join(root, entry, name)) as handle:
                return handle.read().strip()
        try:
            level, kind, size = read("level"), read("type"), read("size")
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[f"L{level}{suffix}"] = size
    return caches


def _vendor_from_name(name):
    lowered = (name or "").lower()
    if "amd" in lowered:
        return "AuthenticAMD"
    if "intel" in lowered:
        return "GenuineIntel"
    return ""


def current():
    """This process's fingerprint (a JSON-ready dict). The oneDNN fields read
    the environment as it is now: oneDNN reads it at its first kernel, so call
    this after the settings are final (tfklgan's import sets
    TF_ENABLE_ONEDNN_OPTS; the CPU protocol sets ONEDNN_MAX_CPU_ISA)."""
    import tensorflow as tf
    info = _cpuinfo()
    isa = sorted(f for f in info.get("flags", "").split()
                 if f.startswith(("avx", "amx")) or f == "fma")
    name = info.get("model name") or platform.processor() or platform.machine()
    return {"cpu": name,
            "vendor": info.get("vendor_id") or _vendor_from_name(name),
            "cpu_family": info.get("cpu family", ""), "cpu_model": info.get("model", ""),
            "caches": _caches(), "isa": isa, "cores": os.cpu_count(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
            "intra_op_threads": int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0") or 0),
            "tensorflow": tf.__version__,
            "machine": platform.machine()}


def complete(record, tensorflow=None):
    """A stored record with what older records imply filled in: the vendor
    from the CPU's name, x86-64 where AVX flags were recorded, the default
    thread count (no earlier run set one), TensorFlow's version from the
    run's protocol (`tensorflow`)."""
    record = dict(record or {})
    if not record:
        return record
    if not record.get("vendor"):
        record["vendor"] = _vendor_from_name(record.get("cpu", ""))
    if not record.get("machine") and record.get("isa"):
        record["machine"] = "x86_64"
    record.setdefault("intra_op_threads", 0)
    if not record.get("tensorflow") and tensorflow:
        record["tensorflow"] = tensorflow
    return record


def _value(record, field):
    value = record.get(field)
    if field == "onednn_max_cpu_isa" and isinstance(value, str):
        return value.upper()
    return value


def compare(a, b):
    """(same, differences): same is True where the two records are one
    fingerprint, so a run of one repeats bit for bit on the other; differences
    lists "field: a vs b" for every field that differs or is unknown in a
    record (an unknown field other than LATER_FIELDS makes them not the same)."""
    differences = []
    for field in FIELDS:
        known_a, known_b = field in a and a[field] not in ("", None), \
            field in b and b[field] not in ("", None)
        if field == "onednn_max_cpu_isa":  # "" is a setting: no cap
            known_a, known_b = field in a, field in b
        if not (known_a and known_b):
            if field not in LATER_FIELDS:
                differences.append(f"{field}: {a.get(field, 'not recorded')} vs "
                                   f"{b.get(field, 'not recorded')}")
            continue
        if _value(a, field) != _value(b, field):
            differences.append(f"{field}: {_value(a, field)} vs {_value(b, field)}")
    return not differences, differences


def text(record):
    """One line for tables: "AMD EPYC (AuthenticAMD family 25 model 1), 2 cores,
    oneDNN capped at AVX2, TF 2.21.0", naming the intra-op threads where
    TF_NUM_INTRAOP_THREADS set them (a field of the fingerprint like the rest)."""
    if not record:
        return "not recorded"
    cpu = record.get("cpu", "?")
    vendor = record.get("vendor") or _vendor_from_name(cpu)
    family = (f" ({vendor} family {record['cpu_family']} model {record['cpu_model']})"
              if record.get("cpu_family") else "")
    if record.get("onednn") == "0":
        kernels = "oneDNN off"
    elif record.get("onednn_max_cpu_isa"):
        kernels = f"oneDNN capped at {record['onednn_max_cpu_isa']}"
    else:
        kernels = "oneDNN uncapped"
    threads = record.get("intra_op_threads") or 0  # 0: TensorFlow's default, one per core
    threads = f", {threads} intra-op thread{'s' * (threads > 1)}" if threads else ""
    tf_version = f", TF {record['tensorflow']}" if record.get("tensorflow") else ""
    return f"{cpu}{family}, {record.get('cores', '?')} cores, {kernels}{threads}{tf_version}"
