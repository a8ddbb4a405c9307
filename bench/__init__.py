"""Benchmarks (`make bench`): each module measures, prints its figures next to
the reference it names, and adds its keys to bench/results.json."""
