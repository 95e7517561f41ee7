"""nbkernels: finite versus infinite neural networks, one architecture description for both.

    >>> import nbkernels as nbk
    >>> arch = nbk.cnn(depth=2, width=128, readout="gap")
    >>> k = arch.kernel(x_train)              # nbk.Kernel(nngp, ntk), exact infinite width
    >>> net = arch.network()                  # the finite Flax network
    >>> with nbk.settings.context(block_gb=0.5): ...   # how kernels are computed (nbkernels.settings)
"""
from . import settings
from .architecture import Architecture, ChannelsFirstWarning, Network, cnn, fcn, serial
from .blocks import KernelMemoryError
from .engine import KernelTimeError
from .kernels import Kernel
from .layers import Conv, ConvLocal, Dense, Erf, Flatten, GlobalAvgPool, Relu

__version__ = "0.1.0"

__all__ = ["Architecture", "Network", "serial", "fcn", "cnn", "Kernel", "KernelMemoryError", "KernelTimeError",
           "ChannelsFirstWarning", "settings",
           "Dense", "Conv", "ConvLocal", "Relu", "Erf", "Flatten", "GlobalAvgPool"]


def __getattr__(name):
    # Submodules load on first use so `import nbkernels` stays quick.
    import importlib
    if name in ("data", "cache", "plots", "predict", "train", "empirical", "report",
                "notebook", "compute", "study", "engine", "blocks", "fused", "stats", "kernels", "layers"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nbkernels' has no attribute {name!r}")
