"""Benchmark every stage of inference and training on this machine (see :mod:`lesionseg.benchmark`).

Usage::

    python scripts/benchmark.py --out runs/benchmark [--repeats 3] [--quick]
        [--whole-model M --cord-model M --lesion-model M]

Writes ``benchmark.json`` and ``benchmark.md`` into ``--out``; ``lesionseg benchmark`` is the same.
"""

from lesionseg.benchmark import main

if __name__ == "__main__":
    main()
