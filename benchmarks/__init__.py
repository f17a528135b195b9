"""Speed and quality measurements, run on demand (`make bench` or `python -m benchmarks.run NAME`).

Each benchmark writes benchmarks/results/<name>.json; benchmarks/RESULTS.md is rebuilt from them.
Timings are wall-clock on the machine that runs them: compare ratios taken in one run.
"""
