"""Benchmarks: ``make bench`` (``python -m bench``) runs every ``bench/bench_*.py`` module's
``main(args)`` in name order; each prints its own figures. ``python -m bench demo`` runs only
modules whose name contains ``demo``."""
