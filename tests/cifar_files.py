"""Small CIFAR-10 folders in the official python-pickle layout, for tests that must pass without
the real data (kept out of conftest.py: two conftest modules, tests/ and notebooks/, cannot both be
imported by the name ``conftest``)."""
import pickle

import numpy as np


def write_cifar_folder(root, n_per_batch=(30, 30), n_test=20, seed=0):
    """Tiny CIFAR-10 in the official python-pickle layout (protocol 2, bytes keys)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    def batch(n, label):
        y = [int(i % 10) for i in range(n)]
        return {b"batch_label": label.encode(), b"labels": y,
                b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                b"filenames": [f"img{i}.png".encode() for i in range(n)]}

    for i, n in enumerate(n_per_batch, 1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch(n, f"training batch {i}"), f, protocol=2)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch(n_test, "testing batch 1 of 1"), f, protocol=2)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": 10000, b"num_vis": 3072}, f, protocol=2)
    return folder
