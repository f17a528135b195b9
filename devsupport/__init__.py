"""Support for running the pipeline the way a user does, for the tests and the benchmarks alike.

Both need the same things: a throw-away copy of this checkout where `dvc repro` runs without
touching the working tree (`workspace`), and servers started on a free port, waited for and stopped
with everything they spawned (`processes`). It is a package of its own, outside `pipelines/`, because
nothing the product runs needs it, and outside `tests/` and `benchmarks/`, because neither should
import the other.
"""
