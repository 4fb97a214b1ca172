"""Benchmarks (dev only, not deployed): ``make bench`` / ``python -m bench``.

Sections: ``latency`` (webhook cold / warm / first-ever, with Microsoft's documented script as the baseline
in the same world), ``scaling`` (subscription size, captures on the watcher), ``storm`` (concurrent
duplicate deliveries through the local host), ``coldstart`` (new process, import time), ``faults``
(throttling) and ``analysis`` (``bench.analysis_bench``). ``bench.runner.run(Config(...))`` runs them
programmatically (the smoke test does, with ``Config.tiny()``).
"""
