"""Optional native code: C++ sources shipped with the package, compiled on first use, loaded with
ctypes. No torch import, so :mod:`topoprune.graphs` can use it.

The first call compiles a source with the system C++ compiler (``$CXX``, else
``c++``/``g++``/``clang++``) into a cache folder (``$TOPOPRUNE_CACHE_DIR``, else
``~/.cache/topoprune``) under a name that hashes the source, the flags, the compiler and this
CPU, so later processes load it at once. Without a compiler, or if compilation fails,
:func:`load_library` returns ``None`` with one warning and the caller uses its pure-Python path.
``TOPOPRUNE_NO_NATIVE=1`` turns every native library off. Users: :mod:`topoprune.compact.kernel`
(the direct convolution) and :mod:`topoprune.graphs.engine` (the swap search).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

BASE_FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC")


def compiler() -> str | None:
    """The C++ compiler to use, or None when there is none."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def native_disabled() -> bool:
    """Whether ``TOPOPRUNE_NO_NATIVE=1`` switches native code off."""
    return os.environ.get("TOPOPRUNE_NO_NATIVE") == "1"


def cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU's feature flags where Linux lists them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in lines if line.startswith(("flags", "Features")))
    except (OSError, StopIteration):
        flags = platform.processor()
    return f"{platform.machine()} {flags}"


def cache_dir() -> Path:
    """Where compiled libraries are kept."""
    root = os.environ.get("TOPOPRUNE_CACHE_DIR") or Path.home() / ".cache" / "topoprune"
    return Path(root) / "kernels"


def _build(compiler_path: str, source: Path, flags: tuple[str, ...], target: Path) -> None:
    """Compile ``source`` to ``target`` atomically (temp file + rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(handle)
    try:
        subprocess.run(
            [compiler_path, *flags, str(source), "-o", temp],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def load_library(
    source: Path,
    flags: tuple[str, ...],
    entry: tuple[str, list],
    what: str,
    fallback: str,
) -> ctypes.CDLL | None:
    """``source`` compiled with ``flags`` and loaded, its function ``entry = (symbol, argtypes)``
    declared (returning a C int); or None (with one warning naming ``what`` and the
    ``fallback``) where no compiler exists or the build fails; silently None when
    :func:`native_disabled`."""
    if native_disabled():
        return None
    compiler_path = compiler()
    if compiler_path is None or not source.exists():
        warnings.warn(
            f"topoprune: no C++ compiler (or source) found; the native {what} is off, {fallback}",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    key = hashlib.sha256(
        b"\0".join(
            [source.read_bytes(), " ".join(flags).encode(), compiler_path.encode()]
            + [cpu_signature().encode()]
        )
    ).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}_{key}.so"
    try:
        if not target.exists():
            _build(compiler_path, source, flags, target)
        library = ctypes.CDLL(str(target))
        function = getattr(library, entry[0])
    except (OSError, subprocess.SubprocessError, AttributeError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        warnings.warn(
            f"topoprune: building the native {what} failed ({detail.strip()[:300]}); {fallback}",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    function.argtypes = entry[1]
    function.restype = ctypes.c_int
    return library
