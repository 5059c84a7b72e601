"""The benchmark's phases, one module each, in the order bench/run.py runs them."""
