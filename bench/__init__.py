"""The benchmarks: they print numbers, and the tests never assert them.

    speed.py      python -m bench.speed train|sample: step time, tokens/s, MFU; time to a val loss
    suite.py      python -m bench.suite: every GPU measurement, one process each, logs kept
    nanogpt.sh    nanoGPT's recipe from a checkout of it, for the side-by-side
    results/      what was measured: each session's numbers, with its commands and raw output
"""
