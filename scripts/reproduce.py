"""Reproduce a paper table with one command.

  python scripts/reproduce.py klgan_table1                      # the paper's protocol
  python scripts/reproduce.py klgan_table1 --protocol=cpu       # the CPU proxy
  python scripts/reproduce.py klgan_table1 --protocol=cpu --seeds=1 --methods=klgan
  python scripts/reproduce.py mnist_table --protocol=cpu --rescore   # re-score finished runs
  python scripts/reproduce.py klgan_table1 --protocol=cpu --seeds=1 --methods=klgan --verify
  python scripts/reproduce.py klgan_table1 --scale=0.01 --dataset=mnist_sample \
      --feature_network=classifier --width=8                   # ad hoc

  python scripts/reproduce.py mbd_study --protocol=cpu                # MBD's effect by batch size
  python scripts/reproduce.py bf16_study --protocol=cpu               # float32 against bf16
  python scripts/reproduce.py sn32_table --protocol=cpu               # the SN cells at 32x32
  python scripts/reproduce.py klgan_table1_long --protocol=cpu        # Table I, 10,000 steps
  python scripts/reproduce.py reference_parity --protocol=cpu --torch_python=PYTHON
  python scripts/reproduce.py mbd_study --protocol=cpu --seeds=2 --publish   # into docs/results

Tables: klgan_table1, klgan_table1_long (its cells for 10,000 steps under
--protocol=cpu; without a protocol, the paper's length, as klgan_table1),
mnist_table, celeba64_sn_table, sn32_table (the SN table's cells at 32x32 on
the dcgan32 networks), the study
mbd_study (KL-GAN with and without MBD at batch 64, 256 and 1024, every run
seeing 640,000 images, plus the MBD cell without its halved D learning rate;
its table.md adds each contrast with Welch's 95% interval) and the study
bf16_study (Table I's KL-GAN cells in float32 and in mixed bfloat16, oneDNN
uncapped so that bf16 instructions are used where the CPU has them). Writes
results/<table>/table.md (paper beside ours, the rankings and Kendall's tau),
table.csv, plots/fid_<method>.png and grids/. Finished runs are not rerun,
so an interrupted table resumes. A run that another command is training (its
directory is locked) is skipped, so two commands can share a table; then
--report_only writes the table of all its finished runs.

reference_parity trains Table I's KL-GAN cells (without and with MBD) and
R1-GAN in tfklgan (as the proxy trains, and with PyTorch's placement of Adam's
eps) and in the PyTorch reference (reference/pytorch_gan.py, run by
--torch_python, an interpreter with PyTorch), scores all by one protocol and
writes results/reference_parity/README.md; finished runs are kept.

--publish copies the chosen finished runs' records (config, logs, scores and
final sample grid; not the weights) from --results_dir into docs/results (or
--published_dir), with paths relative to the repository, and writes the table
there from every run published; a published run is never overwritten by a
different one.

--verify compares the chosen runs with the published ones (docs/results):
bit-equal on the same kernel fingerprint, else whether each run falls in its
cell's 95% prediction interval; it writes verify.md and exits 1 unless the
table's verdict is "consistent".
"""

import os
import sys

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

flags.DEFINE_string("protocol", None, "a fixed reduced protocol: cpu (mnist_sample, reduced "
                    "width, the shipped MNIST classifier, 3 seeds)")
flags.DEFINE_bool("rescore", False, "re-evaluate finished runs' final generators (no training)")
flags.DEFINE_enum("eval_values", None, ["uint8", "float32"],
                  "score generated images as uint8 (the rule) or float32 (default: as the "
                  "table's finished runs were, uint8 for a new table)")
flags.DEFINE_bool("report_only", False, "write the table of the finished runs; train nothing")
flags.DEFINE_float("scale", 1.0, "shrink steps, evaluation samples and dataset (1 = paper)")
flags.DEFINE_list("seeds", None, "seeds to run (default: the table's)")
flags.DEFINE_list("methods", None, "methods (rows) to run (default: all)")
flags.DEFINE_string("dataset", None, "swap in another dataset, e.g. mnist_sample")
flags.DEFINE_integer("image_size", None, "override the image size")
flags.DEFINE_integer("width", None, "override the network width")
flags.DEFINE_integer("batch_size", None, "override the batch size")
flags.DEFINE_integer("eval_points", 4, "evaluations per run (the FID-vs-step plot)")
flags.DEFINE_integer("min_eval_samples", 100, "lower bound of the scaled sample count")
flags.DEFINE_enum("feature_network", "inception", ["inception", "classifier"],
                  "feature network for IS/FID/KID")
flags.DEFINE_string("inception_path", None, "local copy of TF-GAN's Inception module")
flags.DEFINE_string("classifier_path", None, "domain classifier SavedModel")
flags.DEFINE_string("cache_dir", None, "cache for decoded data and real activations")
flags.DEFINE_string("data_dir", None, "TFDS data_dir with prepared datasets (offline mnist/celeb_a)")
flags.DEFINE_string("celeba_dir", None, "local CelebA folder with img_align_celeba/ and "
                    "list_attr_celeba.txt")
flags.DEFINE_string("results_dir", "results", "where results/<table>/ goes")
flags.DEFINE_bool("verify", False, "rerun the chosen runs and compare them with the published "
                  "ones (--published_dir): bit-equal on the same kernel fingerprint, else "
                  "inside or outside the cell's 95% prediction interval")
flags.DEFINE_bool("publish", False, "copy the chosen finished runs' records (not their "
                  "weights) from --results_dir into --published_dir with repository-relative "
                  "paths and write the table there from every run it holds; trains nothing")
flags.DEFINE_string("published_dir", None, "published results to --verify against or "
                    "--publish into (default: docs/results of this repository)")
flags.DEFINE_string("torch_python", None, "reference_parity: the Python with PyTorch that "
                    "runs the reference trainer (default: this one)")
flags.DEFINE_integer("torch_threads", 0, "reference_parity: the trainer's threads (0: "
                     "PyTorch's default)")
flags.DEFINE_list("frameworks", None, "reference_parity: which of tfklgan, tfklgan_torch_eps "
                  "(tfklgan with --adam_epsilon=torch) and pytorch to run (default: all)")
flags.DEFINE_bool("progress", True, "print a line per run (run i of N, time left) to stderr")
FLAGS = flags.FLAGS


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    from tfklgan.reproduce import (
        TABLES,
        ReproduceOptions,
        RunPreempted,
        publish,
        reproduce,
        verify,
    )
    if len(argv) != 2:
        raise app.UsageError(f"name one table: {sorted(TABLES)} (or reference_parity)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if argv[1] == "reference_parity":
        return _reference_parity(root)
    options = ReproduceOptions(
        protocol=FLAGS.protocol, rescore=FLAGS.rescore, report_only=FLAGS.report_only,
        scale=FLAGS.scale,
        seeds=[int(s) for s in FLAGS.seeds] if FLAGS.seeds else None,
        methods=FLAGS.methods, dataset=FLAGS.dataset, image_size=FLAGS.image_size,
        width=FLAGS.width, batch_size=FLAGS.batch_size, eval_points=FLAGS.eval_points,
        min_eval_samples=FLAGS.min_eval_samples, feature_network=FLAGS.feature_network,
        inception_path=FLAGS.inception_path, classifier_path=FLAGS.classifier_path,
        cache_dir=FLAGS.cache_dir, data_dir=FLAGS.data_dir, celeba_dir=FLAGS.celeba_dir,
        results_dir=FLAGS.results_dir, progress=FLAGS.progress, eval_values=FLAGS.eval_values,
        root=root)
    published_dir = FLAGS.published_dir or os.path.join(root, "docs", "results")
    try:
        if FLAGS.publish and (FLAGS.verify or FLAGS.rescore):
            raise ValueError("--publish trains and scores nothing; drop --verify and --rescore")
        if FLAGS.publish:
            out_dir, new = publish(argv[1], options, published_dir)
            print(f"published {len(new)} new run{'' if len(new) == 1 else 's'}; the table of "
                  f"every run in {out_dir} is {os.path.join(out_dir, 'table.md')}")
            return 0
        if FLAGS.verify:
            report = verify(argv[1], options, published_dir)
            out_dir = os.path.join(options.results_dir, argv[1])
            print(open(os.path.join(out_dir, "verify.md")).read())
            return 0 if report["verdict"].startswith("consistent") else 1
        out_dir, results = reproduce(argv[1], options)
    except RunPreempted as stopped:
        print(stopped, file=sys.stderr)
        return 128 + int(stopped.signum)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not results:
        print(f"no finished runs in {out_dir} yet")
        return 0
    print(open(os.path.join(out_dir, "table.md")).read())
    print(f"{len(results)} runs; outputs in {out_dir}")
    return 0


def _reference_parity(root):
    from tfklgan.reproduce.parity import ParityOptions, Study
    if FLAGS.protocol != "cpu":
        print("error: reference_parity runs the cpu protocol; add --protocol=cpu",
              file=sys.stderr)
        return 2
    from tfklgan.reproduce import RunPreempted
    try:
        options = ParityOptions(
            results_dir=FLAGS.results_dir, protocol=FLAGS.protocol, root=root,
            seeds=tuple(int(s) for s in FLAGS.seeds) if FLAGS.seeds else ParityOptions.seeds,
            torch_python=FLAGS.torch_python, torch_threads=FLAGS.torch_threads,
            classifier_path=FLAGS.classifier_path, progress=FLAGS.progress,
            report_only=FLAGS.report_only,
            frameworks=tuple(FLAGS.frameworks or ParityOptions.frameworks))
        Study(options).run()
    except RunPreempted as stopped:
        print(stopped, file=sys.stderr)
        return 128 + int(stopped.signum)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = os.path.join(FLAGS.results_dir, "reference_parity")
    print(open(os.path.join(out, "README.md")).read())
    return 0


if __name__ == "__main__":
    app.run(main)
