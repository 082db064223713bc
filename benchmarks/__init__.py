"""pytest-benchmark suites comparing tinygradattn with PyTorch (and numpy for GEMM).

    python -m pytest benchmarks            # the raw pytest-benchmark tables
    python -m benchmarks.report [--quick]  # one table of ratios (torch time / our time)
"""
