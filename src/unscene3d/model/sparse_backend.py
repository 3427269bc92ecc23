"""The sparse-convolution backend: the ``spconv`` API, on CPU or on an NVIDIA GPU, chosen at run time.

The same code runs with the ``spconv`` package (CPU) and with ``spconv-cu12x`` / ``spconv-triton`` (GPU):
they all install the module ``spconv.pytorch`` with one API. The device is picked when a model is
built or loaded (:func:`resolve_device`), never at import.

CPU backward shim
-----------------
spconv 2.3.8's backward functions (``spconv.pytorch.ops.indice_conv_backward`` and friends) call
``get_current_stream()`` -> ``torch.cuda.current_stream().cuda_stream`` *before* they look at the
device of their tensors. On a CPU-only torch build that call raises "Torch not compiled with CUDA
enabled", so no CPU model can be trained, although the CPU branch that follows never uses the
stream (it runs gather / torch.mm / scatter-add on the host). The smallest safe patch is to replace the
``get_current_stream`` name that ``spconv.pytorch.ops`` (and ``spconv.pytorch.hash``) imported with a
function that returns the null stream ``0`` when CUDA is unavailable and defers to the original
otherwise. Nothing else in spconv changes, GPU builds keep their behaviour, and applying the patch
twice is harmless.

CPU thread-safety shim
----------------------
Measured here (spconv 2.3.8, torch 2.13 CPU, 2 threads): the CPU convolution (``ops.indice_conv``, the
C++ gather / external-matmul / scatter-add path) intermittently returns wrong rows when torch runs
its intra-op thread pool with more than one thread -- a kernel-2 stride-2 convolution on ~2k voxels
disagreed with a numpy reference in 11 of 60 calls (one row off by ~0.2). With torch limited to one
thread *inside* ``ops.indice_conv`` it matched in 200 of 200 calls, whatever spconv's own OpenMP pool
does. So the CPU calls of ``indice_conv`` and ``indice_conv_backward`` run with one torch thread (the
thread count is restored right after); GPU calls are untouched. The rest of the network (norms,
activations, the contrastive loss) keeps all threads. The race showed while other processes loaded
the CPU and not on a quiet machine; its price is speed (Res16UNet34C on scene0000_00, 2 threads:
forward 2.0 -> 3.9 s, forward + backward 5.1 -> 7.7 s). Both patches are applied by
:func:`spconv_module`, which every model in this package goes through.
"""

from __future__ import annotations

import functools
import importlib
import logging
from types import ModuleType

import torch

from unscene3d.errors import InputError

log = logging.getLogger(__name__)

_PATCHED_MODULES = ("spconv.pytorch.ops", "spconv.pytorch.hash")
_CPU_SINGLE_THREAD_OPS = ("indice_conv", "indice_conv_backward")


def _cpu_safe_stream_getter(original):
    def get_current_stream() -> int:
        # CPU kernels ignore the stream; the null stream keeps spconv off torch.cuda on CPU-only builds.
        if not torch.cuda.is_available():
            return 0
        return original()

    get_current_stream.unscene3d_shim = True
    return get_current_stream


def install_cpu_backward_shim() -> bool:
    """Patch spconv's stream lookup so CPU backward works on CPU-only torch; True when a patch was applied."""
    patched = False
    for module_name in _PATCHED_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        getter = getattr(module, "get_current_stream", None)
        if getter is None or getattr(getter, "unscene3d_shim", False):
            continue
        module.get_current_stream = _cpu_safe_stream_getter(getter)
        patched = True
    if patched:
        log.debug("installed spconv CPU backward shim")
    return patched


def _single_threaded_on_cpu(original):
    @functools.wraps(original)
    def run(features, *args, **kwargs):
        if features.is_cuda:
            return original(features, *args, **kwargs)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return original(features, *args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    run.unscene3d_shim = True
    return run


def install_cpu_thread_shim() -> bool:
    """Run spconv's CPU convolution kernels with one torch thread (see the module notes); True if patched."""
    try:
        ops = importlib.import_module("spconv.pytorch.ops")
    except ImportError:
        return False
    patched = False
    for name in _CPU_SINGLE_THREAD_OPS:
        function = getattr(ops, name, None)
        if function is None or getattr(function, "unscene3d_shim", False):
            continue
        setattr(ops, name, _single_threaded_on_cpu(function))
        patched = True
    return patched


def spconv_module() -> ModuleType:
    """``spconv.pytorch`` with the CPU backward shim installed; a clear error when spconv is missing."""
    try:
        spconv = importlib.import_module("spconv.pytorch")
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise InputError(
            None,
            "the sparse-convolution package is missing: install 'spconv' (CPU) or 'spconv-cu12x' (NVIDIA GPU)"
            f" ({error})",
        ) from error
    install_cpu_backward_shim()
    install_cpu_thread_shim()
    return spconv


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``device`` when given, else CUDA when available, else CPU.

    Raises:
        InputError: ``device`` is not a device name (``cpu``, ``cuda``, ``cuda:1``), or names a GPU this
            machine does not have.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(None, f"--device {device!r} is not a device: use cpu, cuda or cuda:N") from None
    if resolved.type not in ("cpu", "cuda"):
        raise InputError(None, f"--device {device!r}: only cpu and cuda devices are supported")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(None, f"--device {device!r} requested but CUDA is not available on this machine")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError(None, f"--device {device!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    return resolved
