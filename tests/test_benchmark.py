"""The benchmark tool measures what it says (speed itself is never asserted)."""

import json
import math
import os
import platform
import subprocess
import sys

import pytest
import tensorflow as tf
import warm_scripts

from tfklgan import benchmark


def test_profiled_flops_of_a_matmul_are_exact():
    fn = tf.function(lambda a, b: tf.matmul(a, b))
    concrete = fn.get_concrete_function(tf.TensorSpec([8, 16]), tf.TensorSpec([16, 4]))
    assert benchmark.profiled_flops(concrete) == 2 * 8 * 16 * 4


def test_benchmark_step_reports_consistent_numbers():
    config = benchmark.bench_config("klgan", width=4, batch_size=8, precision="float32",
                                    jit=False, mbd=True)
    result = benchmark.benchmark_step(config, repeats=2, steps=2, warmup=1, ceiling=10.0)
    assert result.images_per_sec > 0 and result.step_seconds > 0
    assert math.isclose(result.images_per_sec, 8 / result.step_seconds)
    assert math.isclose(result.gflops_per_sec, result.flops_per_step / result.step_seconds / 1e9)
    assert math.isclose(result.utilization, result.gflops_per_sec / 10.0)
    assert 0.0 <= result.input_wait_fraction < 1.0
    # forward + backward of G (8 images) and D (16 images) at width 4: tens of MFLOP
    assert 1e7 < result.flops_per_step < 1e9
    table = benchmark.markdown_table([result])
    assert "| klgan | klgan32 | 4 | 8 | float32 | off |" in table
    assert result.onednn == benchmark.onednn_enabled()


def test_compare_layers_times_each_replacement():
    results = benchmark.compare_layers(width=4, batch_size=2, repeats=2)
    assert [r.layer for r in results] == ["D conv2 s2 16->32", "D conv2 s2 32->64"]
    assert results[0].input_shape == (4, 4, 4, 16)
    for r in results:
        assert r.reference_ms > 0 and r.replacement_ms > 0
        assert math.isclose(r.speedup, r.reference_ms / r.replacement_ms)
    assert benchmark.layer_table(results).count("\n") == 3


def _onednn_after_import(setting):
    """(TF_ENABLE_ONEDNN_OPTS, oneDNN on) in a fresh process that imports tfklgan."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("import os, tfklgan; from tfklgan.benchmark import onednn_enabled; "
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], onednn_enabled())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()[-2:]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason="TensorFlow's oneDNN CPU kernels are an x86 feature")
def test_importing_tfklgan_turns_on_onednn_unless_the_user_said_no():
    assert _onednn_after_import(None) == ["1", "True"]
    assert _onednn_after_import("0") == ["0", "False"]


def test_evaluation_benchmark_reports_every_stage():
    result = benchmark.benchmark_evaluation(num_images=400, batch_size=200)
    assert result["images"] == 400 and result["feature_dim"] == 128
    assert set(result["seconds"]) == {"activations", "is_fid_kid",
                                      "precision_recall_density_coverage"}
    assert result["total_seconds"] == sum(result["seconds"].values()) > 0


def test_celeba_decode_benchmark_reads_a_celeba_like_folder(tmp_path):
    root = benchmark.write_celeba_like_folder(str(tmp_path / "celeba"), 12)
    result = benchmark.benchmark_celeba_decode(root, image_size=32)
    assert result["images"] == 12 and result["images_per_second"] > 0
    assert result["cache_bytes_per_image"] >= 32 * 32 * 3  # uint8 images (+ labels)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARK_PYTORCH = os.path.join(ROOT, "scripts", "benchmark_pytorch.py")
sys.path.insert(0, os.path.dirname(BENCHMARK_PYTORCH))
import benchmark_pytorch  # noqa: E402  (imports neither framework until it times one)


def test_table1_cells_benchmark_their_own_flagfile_settings():
    from tfklgan.reproduce import TABLES
    assert benchmark.TABLE1_METHODS == tuple(dict.fromkeys(
        cell.method for cell in TABLES["klgan_table1"].cells))
    assert benchmark_pytorch.METHODS == benchmark.TABLE1_METHODS  # the script's copy
    for method in benchmark.TABLE1_METHODS:
        for mbd in (False, True):
            config = benchmark.table1_bench_config(method, mbd, 8, 16, root=ROOT).validate()
            assert (config.network.width, config.run.batch_size, config.run.precision,
                    config.network.minibatch_discrimination) == (8, 16, "float32", mbd)
            assert config.data.name == "mnist_sample" and config.data.channel_count == 3
            assert config.objective.method == method and config.network.init == "torch"
            if method != "klgan":  # the authors' update: G, then D on G's images
                assert config.objective.generator_first and config.objective.reuse_generated
    assert benchmark.table1_bench_config("wgan_gp", False, 8, 16, ROOT).objective.gp_norm == \
        "per_pixel"


@pytest.mark.slow
def test_pytorch_comparison_child_times_tfklgan_cells_and_summarizes_rounds():
    # forked from a warm interpreter (tests/warm_scripts.py), as the other scripts' tests
    proc = warm_scripts.run([sys.executable, BENCHMARK_PYTORCH, "--child=tfklgan", "--widths=4",
                             "--methods=r1gan", "--mbd=false,true", "--batch_size=8",
                             "--repeats=1", "--steps=1", "--warmup=1"],
                            ROOT, dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [(r["method"], r["mbd"]) for r in results] == [("r1gan", False), ("r1gan", True)]
    assert all(r["seconds"] > 0 for r in results)
    assert results[1]["params"][1] == results[0]["params"][1] + 8 * 8 + 8  # MBD tensor, logit
    assert benchmark_pytorch.spread([90.0, 100.0, 120.0]) == pytest.approx(0.2)
    rates = {(("klgan", True), "tfklgan"): [0.1, 0.2, 0.1],
             (("klgan", True), "pytorch"): [0.2, 0.2, 0.4]}
    [row] = benchmark_pytorch.summary_rows(rates, 64)
    assert row["ratios"] == pytest.approx([2.0, 1.0, 4.0]) and row["ratio"] == pytest.approx(2.0)
    assert row["tfklgan"] == pytest.approx(640.0) and row["pytorch"] == pytest.approx(320.0)


try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False


@pytest.mark.skipif(not HAVE_TORCH, reason="the PyTorch side needs torch (not a dependency)")
def test_pytorch_side_builds_the_same_networks_and_steps_every_cell():
    from tfklgan.training import build_gan
    for method in benchmark.TABLE1_METHODS:
        for mbd in (False, True):
            seconds, params = benchmark_pytorch.time_pytorch(method, mbd, 4, 8, 1, 1, 0)
            gan = build_gan(benchmark.table1_bench_config(method, mbd, 4, 8, root=ROOT))
            assert params == (gan.generator.count_params(), gan.discriminator.count_params())
            assert seconds > 0


def test_pytorch_child_never_loads_tensorflow():
    # TensorFlow merely loaded slows PyTorch's step by 3-4%. Without torch the
    # child fails at `import torch`; TensorFlow must not be loaded either way.
    argv = [BENCHMARK_PYTORCH, "--child=pytorch", "--widths=4", "--methods=klgan",
            "--mbd=false", "--batch_size=8", "--repeats=1", "--steps=1", "--warmup=0"]
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print('tensorflow loaded:', 'tensorflow' in sys.modules))\n"
            f"sys.argv = {argv!r}\n"
            f"runpy.run_path({BENCHMARK_PYTORCH!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert "tensorflow loaded: False" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert proc.returncode == (0 if HAVE_TORCH else 1)


@pytest.mark.skipif(HAVE_TORCH, reason="checks the message of a machine without torch")
def test_pytorch_comparison_without_torch_says_so_in_one_line():
    proc = subprocess.run([sys.executable, BENCHMARK_PYTORCH, "--widths=4"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "PyTorch is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_loop_benchmark_prices_each_kind_of_periodic_work():
    from tfklgan.config import TrainConfig
    config = TrainConfig.from_flat(method="klgan", dataset="mnist_sample", width=4,
                                   latent_dim=8, batch_size=16, max_examples=64,
                                   minibatch_discrimination=True, log_every=2, verbose=0)
    rates = benchmark.benchmark_loop(config, steps=8, warmup=2, every=4, rounds=1)
    assert set(rates) == {*benchmark.LOOP_VARIANTS, "bare step"}
    assert all(rate > 0 for rate in rates.values())
    table = benchmark.loop_table(rates)
    assert table.count("\n") == len(benchmark.LOOP_VARIANTS) + 2
    assert "| bare step (benchmark_step) |" in table and "% of the loop's time" in table


def test_the_ceiling_is_the_best_warmed_matmul_in_the_steps_precision():
    """Utilization is measured against the best of the warmed timings in the
    step's own precision (a float32 ceiling under a bf16 step once read 104%);
    a step that outruns it gets no percentage."""
    ceiling = benchmark.matmul_ceiling("bfloat16", n=256, repeats=5, warmup=2)
    assert ceiling.dtype == "bfloat16" and ceiling.repeats == 5
    assert ceiling.best >= ceiling.median >= ceiling.low > 0
    assert benchmark.precision_dtype("mixed_bfloat16") == "bfloat16"
    assert benchmark.precision_dtype("float32") == "float32"
    row = dict(method="klgan", network="klgan32", width=4, batch_size=16,
               precision="float32", jit=False, onednn=True, minibatch_discrimination=True,
               images_per_sec=1.0, step_seconds=1.0, flops_per_step=5e9, gflops_per_sec=5.0,
               input_wait_fraction=0.0, parameters=(1, 1))
    within = benchmark.StepBenchmark(ceiling_gflops_per_sec=10.0, **row)
    beyond = benchmark.StepBenchmark(ceiling_gflops_per_sec=4.0, **row)
    table = benchmark.markdown_table([within, beyond]).splitlines()
    assert "| 50% |" in table[2]
    assert "n/a: the step outran the ceiling; rerun" in table[3] and "125%" not in table[3]
