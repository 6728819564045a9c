"""The repository's verification tools, outside the ``ired`` library: run from the repository root.

- ``python -m benchmarks.parity``: ired's parity runs against the IRED reference's numbers
  (``reference_numbers.yaml``, each with its source) -> docs/results/parity/parity.md;
- ``python -m benchmarks.parity_release``: the IRED release's own training over the same window, on this
  machine;
- ``python -m benchmarks.parity_lockstep``: the release's training steps replayed by ired's, step by step;
- ``python -m benchmarks.bench_reference``: seconds per training step of ired and of the release, side by
  side;
- ``bench_release_driver.py``: run by those three with the release's own Python (standard library only; it
  imports the release from its checkout, never ired);
- ``python -m benchmarks.bench_dag``: planning a 1,000-run sweep (``dag_plan_1000``, ``dag_noop_1000``);
- ``python -m benchmarks.bench_gpu``: the GPU measurement -> docs/results/gpu/.

The tools import the library; the library never imports them (tests/test_layers.py). ``python -m ired.bench``,
a user's measurement of their own machine, stays in the library.
"""
