"""A tiny search for the tests: two methods, two trials each, 40 steps at
width 4, registered beside the declared ones. Run as a script, it registers
the search and runs scripts/search.py with the given arguments (so a worker
in its own process sees it)."""

import os
import runpy
import sys

from tfklgan.reproduce.protocols import PROTOCOLS, Protocol
from tfklgan.reproduce.search import SEARCHES, SHARED, Dimension, MethodSpace, Search, _fixed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "tiny_search"


def tiny_search(trials=2, steps=40, **changes):
    methods = (
        MethodSpace("klgan", "configs/table1/klgan.flags", (),
                    (_fixed("the KL-GAN paper's setting", 8e-5, 0.5, 0.9, 0.999, True),)),
        MethodSpace("hinge", "configs/table1/hinge.flags",
                    (Dimension("n_critic", "choice", choices=(1, 2)),),
                    (_fixed("the KL-GAN paper's setting", 8e-5, 0.5, 0.9, 0.999, True,
                            n_critic=1),)),
    )
    values = dict(name=NAME, title="A tiny search", methods=methods, shared=SHARED,
                  trials=trials, sampler_seed=7, seed_base=50, note="For the tests.")
    values.update(changes)
    search = Search(**values)
    SEARCHES[search.name] = search
    PROTOCOLS["cpu"][search.name] = Protocol("cpu", width=4, batch_size=16, steps=steps,
                                             eval_points=2, dataset="mnist_sample",
                                             eval_samples=64, real_split="validation",
                                             real_samples=64)
    return search


if __name__ == "__main__":
    tiny_search(steps=int(os.environ.get("TINY_SEARCH_STEPS", "40")))
    sys.argv = [os.path.join(ROOT, "scripts", "search.py"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
