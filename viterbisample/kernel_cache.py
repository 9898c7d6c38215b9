"""The on-disk cache of the compiled kernels, and what happens where there can be none.

Every kernel is declared with ``cache=True``: Numba keeps its machine code in
``NUMBA_CACHE_DIR`` when that is set, else in the package's ``__pycache__``, else in the
user-wide cache (``~/.cache/numba``).  When none of these is writable (a read-only install
run by an account whose HOME is read-only: a container, a service account), Numba refuses
to define a cached function at all ("cannot cache function ...: no locator available"),
so the package would not even import.

Importing this module (``__init__`` does, before any kernel is defined) makes our kernels
fall back to Numba's no-op cache in that case: they compile in every process (a few
seconds), and one warning says so and how to get the cache back.  Alternatives rejected:
setting ``NUMBA_CACHE_DIR`` to a fresh temporary folder would redirect the cache of every
library in the process and write files that no later process reads; a fixed folder in
/tmp would let another account plant cache files, which hold code.  Functions of other
libraries are left to Numba's usual behaviour.
"""

from __future__ import annotations

import threading
import warnings

from numba.core.dispatcher import Dispatcher

_PACKAGE = __name__.rpartition(".")[0]
_warned = threading.Event()


def _ours(dispatcher: Dispatcher) -> bool:
    module = getattr(dispatcher.py_func, "__module__", None) or ""
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


def _enable_caching_or_not(self: Dispatcher) -> None:
    try:
        _numba_enable_caching(self)
    except RuntimeError as exc:
        if "no locator available" not in str(exc) or not _ours(self):
            raise
        # The dispatcher keeps the NullCache it was created with: compiled, never stored.
        if not _warned.is_set():
            _warned.set()
            warnings.warn(
                "viterbisample: no writable place to cache the compiled kernels (the package "
                "folder and ~/.cache are read-only), so they are compiled anew in each "
                "process; set NUMBA_CACHE_DIR to a writable folder to keep them",
                RuntimeWarning,
                stacklevel=3,  # the kernel's definition
            )


_numba_enable_caching = Dispatcher.enable_caching
Dispatcher.enable_caching = _enable_caching_or_not  # type: ignore[method-assign]


def direct_call(dispatcher: Dispatcher, *example_args):
    """The compiled function ``dispatcher`` runs for arguments of the types of
    ``example_args``, callable without Numba's dispatch.

    A dispatcher matches the types of all arguments on every call, about half a
    microsecond for a dozen arguments: as much as the lattice of a short text.  Per-call
    paths that always pass the same types call the compiled function directly.  Where
    Numba does not expose it (a future version, or ``NUMBA_DISABLE_JIT``), the dispatcher
    itself is returned.
    """
    try:
        entry = dispatcher.compile(tuple(dispatcher.typeof_pyval(a) for a in example_args))
    except AttributeError:
        return dispatcher
    return entry if callable(entry) else dispatcher
