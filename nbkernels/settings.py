"""Every setting nbkernels takes from the environment, read in this module only.

Compute settings say *how* a kernel is computed, never *what*: any of them gives the same kernel to
rounding (the tests check blocked = one block = fused = XLA to 1e-12 in float64). They are one frozen
:class:`Settings`, read from the environment once (the first time they are needed) as the defaults,
overridden for a block of code by :func:`context` (as scikit-learn's ``config_context``) or for one
call by ``arch.kernel(x, settings=...)``, and passed down explicitly from there: nothing below
:meth:`nbkernels.Architecture.kernel` reads the environment. A computed kernel records the settings
that produced it (``Kernel.settings``).

    >>> with nbk.settings.context(fused=False, block_gb=0.5):
    ...     k = arch.kernel(x)              # per-layer XLA programs, blocks within 0.5 GiB
    >>> k.settings.fused
    False

========================  ==========================  ===============================================
environment variable      field                       meaning
========================  ==========================  ===============================================
``NBKERNELS_FUSED``       ``fused`` (1)               the fused Numba kernel for CNN image layers on
                                                      the CPU (0: per-layer XLA programs)
``NBKERNELS_PACK``        ``pack`` (CPU only)         NNGP and NTK as one complex array between the
                                                      XLA layer programs (0/1 force it)
``NBKERNELS_FUSED_PAIRS`` ``fused_pairs`` (256)       input pairs one fused work item holds
``NBKERNELS_MALLOPT``     ``mallopt`` (1)             keep freed block arrays in glibc's heap
``NBKERNELS_BLOCK_GB``    ``block_gb`` (2)            memory one kernel block may use, GiB (at most
                                                      half the free memory)
``NBKERNELS_BLOCK_CACHE_MB`` ``block_cache_mb`` (2)   the array size the CPU's pixel-diagonal blocks
                                                      aim at, MiB
``NBKERNELS_MAX_HOURS``   ``max_hours`` (1)           refuse an in-memory kernel estimated to take
                                                      longer (``none``: never)
========================  ==========================  ===============================================

The folders (``NBKERNELS_DATA``, ``NBKERNELS_CACHE``, ``NBKERNELS_FIGURES``) and the report's switches
(``NBKERNELS_PRESET``, ``NBKERNELS_STATIC_WIDGETS``) are read here too, when they are needed (the report
sets them for the notebooks it runs), by the functions at the end of this module.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

_ENV = {"fused": "NBKERNELS_FUSED", "pack": "NBKERNELS_PACK", "fused_pairs": "NBKERNELS_FUSED_PAIRS",
        "mallopt": "NBKERNELS_MALLOPT", "block_gb": "NBKERNELS_BLOCK_GB",
        "block_cache_mb": "NBKERNELS_BLOCK_CACHE_MB", "max_hours": "NBKERNELS_MAX_HOURS"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """How kernels are computed (see the module's table). ``pack=None`` packs on the CPU only."""

    fused: bool = True
    pack: Optional[bool] = None
    fused_pairs: int = 256
    mallopt: bool = True
    block_gb: float = 2.0
    block_cache_mb: float = 2.0
    max_hours: Optional[float] = 1.0

    def __post_init__(self):
        for name in ("fused_pairs", "block_gb", "block_cache_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"settings: {name} must be positive, got {getattr(self, name)!r} "
                                 f"(${_ENV[name]}).")
        if self.max_hours is not None and not self.max_hours > 0:
            raise ValueError(f"settings: max_hours must be positive or None (no limit), got {self.max_hours!r}.")

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        """The defaults with every ``NBKERNELS_*`` compute variable set in ``environ`` (default
        ``os.environ``) applied; a value that does not parse is an error naming the variable."""
        environ = os.environ if environ is None else environ
        values = {}
        for field, var in _ENV.items():
            raw = environ.get(var, "").strip()
            if not raw:
                continue
            try:
                values[field] = _parse(field, raw)
            except ValueError:
                raise ValueError(f"${var}={raw!r} is not a valid {field}: "
                                 f"{_HELP[field]}; unset it for the default.") from None
        return cls(**values)


_HELP = {"fused": "use 0 or 1", "pack": "use 0 or 1", "fused_pairs": "use a positive integer",
         "mallopt": "use 0 or 1", "block_gb": "use a positive number of GiB",
         "block_cache_mb": "use a positive number of MiB", "max_hours": "use a positive number or 'none'"}


def _parse(field, raw):
    if field in ("fused", "pack", "mallopt"):
        if raw not in ("0", "1"):
            raise ValueError(raw)
        return raw == "1"
    if field == "fused_pairs":
        return int(raw)
    if field == "max_hours" and raw.lower() in ("none", "inf"):
        return None
    return float(raw)


_from_env: Optional[Settings] = None
_current: contextvars.ContextVar = contextvars.ContextVar("nbkernels_settings", default=None)


def get() -> Settings:
    """The settings in effect: those of the innermost :func:`context`, else the environment's (read once)."""
    global _from_env
    s = _current.get()
    if s is not None:
        return s
    if _from_env is None:
        _from_env = Settings.from_env()
    return _from_env


def resolve(settings: Optional[Settings] = None) -> Settings:
    """``settings`` when given, else :func:`get`."""
    if settings is not None and not isinstance(settings, Settings):
        raise TypeError(f"settings must be an nbkernels.settings.Settings, got {type(settings).__name__}.")
    return get() if settings is None else settings


@contextlib.contextmanager
def context(**overrides: Any) -> Iterator[Settings]:
    """Within the block, the settings in effect with ``overrides`` (field names of :class:`Settings`)."""
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise TypeError(f"unknown setting(s) {sorted(unknown)}; the settings are "
                        f"{[f.name for f in dataclasses.fields(Settings)]}.")
    token = _current.set(dataclasses.replace(get(), **overrides))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


# ----------------------------------------------------------------------------------------------
# folders and the report's switches: read when asked, since the report and the tests set them


def data_dir() -> Optional[Path]:
    """``$NBKERNELS_DATA``: the folder that holds ``cifar-10-batches-py`` (None when unset)."""
    v = os.environ.get("NBKERNELS_DATA")
    return Path(v) if v else None


def cache_dir() -> Optional[str]:
    """``$NBKERNELS_CACHE``: the results cache's folder, ``"off"`` for none, None for the default."""
    return os.environ.get("NBKERNELS_CACHE") or None


def figures_dir() -> Optional[Path]:
    """``$NBKERNELS_FIGURES``: where notebooks write their figures (None: the repository's ``figures/``)."""
    v = os.environ.get("NBKERNELS_FIGURES")
    return Path(v) if v else None


def preset(default: str = "default") -> str:
    """``$NBKERNELS_PRESET``: the preset a notebook runs when papermill does not pass one."""
    return os.environ.get("NBKERNELS_PRESET", default)


STATIC_WIDGETS_ENV = "NBKERNELS_STATIC_WIDGETS"


def static_widgets() -> bool:
    """``$NBKERNELS_STATIC_WIDGETS``: the report renders widgets as static pictures."""
    return bool(os.environ.get(STATIC_WIDGETS_ENV))


def distributed_defaults() -> dict:
    """``$JAX_COORDINATOR_ADDRESS``, ``$JAX_NUM_PROCESSES``, ``$JAX_PROCESS_ID``: the defaults of
    ``python -m nbkernels.compute --distributed`` (None where unset)."""
    def integer(var):
        v = os.environ.get(var, "").strip()
        if not v:
            return None
        try:
            return int(v)
        except ValueError:
            raise ValueError(f"${var}={v!r} is not an integer; unset it or give a whole number.") from None
    return dict(coordinator=os.environ.get("JAX_COORDINATOR_ADDRESS") or None,
                num_processes=integer("JAX_NUM_PROCESSES"), process_id=integer("JAX_PROCESS_ID"))
