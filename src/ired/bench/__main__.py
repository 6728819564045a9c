"""``python -m ired.bench``: the speed benchmark (:mod:`ired.bench.speed`)."""

from ired.bench.speed import main

main()
