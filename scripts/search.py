"""Run a declared hyperparameter search: every method the same budget of trials.

  python scripts/search.py table1_search                        # a worker: trials until none is left
  python scripts/search.py table1_search --max_trials=1         # one trial, then stop
  python scripts/search.py table1_search --storage=postgresql://user@host/db   # many machines
  python scripts/search.py table1_search --report_only          # the report of the trials done
  python scripts/search.py table1_search --publish              # records into docs/results

The first worker stores the plan (results/<search>/plan.json: the space, every
trial's setting drawn from the declared seed, each trial's resolved settings
and their sha256) and queues the trials in the Optuna storage (SQLite in the
search's folder unless --storage names a database). Start one worker per free
core, on one machine or several sharing the storage and the results folder; a
worker killed mid-trial leaves a trial that the next worker to start a trial
after --grace_period seconds queues again and resumes from its checkpoints.
`optuna-dashboard sqlite:///results/<search>/optuna.db` shows the storage.
"""

import os
import sys

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

flags.DEFINE_string("protocol", "cpu", "the protocol family whose entry for the search fixes "
                    "data, width, batch, length and evaluation")
flags.DEFINE_string("results_dir", "results", "where results/<search>/ goes (plan, trials, "
                    "report, the default SQLite storage)")
flags.DEFINE_string("storage", None, "an Optuna database URL (default: "
                    "sqlite:///<results_dir>/<search>/optuna.db)")
flags.DEFINE_list("methods", None, "take trials of these methods only (default: all)")
flags.DEFINE_integer("max_trials", None, "stop after this many trials (default: until none "
                     "is queued)")
flags.DEFINE_integer("heartbeat_interval", 60, "seconds between a running trial's heartbeats")
flags.DEFINE_integer("grace_period", 600, "seconds without a heartbeat after which a trial's "
                     "worker is taken for dead and the trial is queued again")
flags.DEFINE_string("cache_dir", None, "cache for decoded data and real activations")
flags.DEFINE_bool("report_only", False, "write the report of the finished trials; train nothing")
flags.DEFINE_bool("publish", False, "copy the finished trials' records (not their weights) "
                  "into --published_dir and write the report there; trains nothing")
flags.DEFINE_string("published_dir", None, "default: docs/results of this repository")
flags.DEFINE_bool("progress", True, "print each trial and the search's progress to stderr")
FLAGS = flags.FLAGS


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    from tfklgan.reproduce import search_report
    from tfklgan.reproduce.search import SEARCHES
    from tfklgan.reproduce.search_worker import SearchError, SearchOptions, Worker, search_named
    if len(argv) != 2:
        raise app.UsageError(f"name one search: {sorted(SEARCHES)}")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    options = SearchOptions(protocol=FLAGS.protocol, results_dir=FLAGS.results_dir,
                            storage=FLAGS.storage, root=root, methods=FLAGS.methods,
                            max_trials=FLAGS.max_trials,
                            heartbeat_interval=FLAGS.heartbeat_interval,
                            grace_period=FLAGS.grace_period, cache_dir=FLAGS.cache_dir,
                            progress=FLAGS.progress)
    try:
        search = search_named(argv[1])
        if FLAGS.publish and FLAGS.report_only:
            raise SearchError("--publish writes the report too; drop --report_only")
        if FLAGS.publish:
            target = search_report.publish(search, options, FLAGS.published_dir or
                                           os.path.join(root, "docs", "results"))
            print(f"published; the report is {os.path.join(target, 'README.md')}")
            return 0
        code = 0 if FLAGS.report_only else Worker(search, options).run()
        folder = search_report.write_report(search, options)
        print(f"report: {os.path.join(folder, 'README.md')}")
        return code
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    app.run(main)
