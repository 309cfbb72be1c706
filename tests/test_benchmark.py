"""The benchmark tool measures what it says (speed itself is never asserted)."""

import math

import tensorflow as tf

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
    assert "| klgan | klgan32 | 4 | 8 |" in table


def test_compare_layers_times_each_replacement():
    results = benchmark.compare_layers(width=4, batch_size=2, repeats=2)
    assert [r.layer for r in results] == ["D conv5 s2 3->4", "D conv5 s2 4->8",
                                          "D conv5 s2 8->16", "G convT4 s2 8->8",
                                          "G convT4 s2 8->4", "G to_image conv3 4->3"]
    assert results[0].input_shape == (4, 36, 36, 3)
    for r in results:
        assert r.reference_ms > 0 and r.replacement_ms > 0
        assert math.isclose(r.speedup, r.reference_ms / r.replacement_ms)
    assert benchmark.layer_table(results).count("\n") == 7
