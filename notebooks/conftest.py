"""nbval settings for the notebooks.

nbval waits a hard-coded 5 s for each output message after a cell's reply
(computationalmodelling/nbval#136, #231: not configurable). A long training cell
whose tqdm widget and prints are still being flushed on a busy 2-core machine
can miss that window (CI failed on 05's training cell this way), so give every
notebook cell a longer output window. The cell's own time limit stays
``--nbval-cell-timeout``.
"""
OUTPUT_TIMEOUT_S = 120


def pytest_runtest_setup(item):
    if hasattr(item, "output_timeout"):
        item.output_timeout = OUTPUT_TIMEOUT_S
