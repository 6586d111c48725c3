"""What tools/benchmark.py records of the machine a benchmark ran on: its software and processors, the peak
memory of a block, and the best matrix-product rate of each compute dtype (the ceiling a step is held to)."""

import os
import platform

import keras
import tensorflow as tf

from tools import flops as flops_lib


def machine_info():
    info = {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cpu_model": platform.processor() or None, "gpus": []}
    try:
        with open("/proc/cpuinfo") as handle:
            models = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else info["cpu_model"]
    except OSError:
        pass
    for gpu in tf.config.list_physical_devices("GPU"):
        info["gpus"].append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
    return info


class PeakMemory:
    """Peak memory while the block runs: the GPU allocator's peak (bytes) when there is a GPU, else the
    process's peak resident set (Linux VmHWM, reset on entry through /proc/self/clear_refs); None where
    neither can be read."""

    def __enter__(self):
        self.gpu = bool(tf.config.list_physical_devices("GPU"))
        self.kind = "gpu_allocator_peak" if self.gpu else "process_peak_rss"
        if self.gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")
        else:
            try:
                with open("/proc/self/clear_refs", "w") as handle:
                    handle.write("5")  # resets the peak resident set size to the current one
            except OSError:
                pass
        return self

    def __exit__(self, *exc):
        self.bytes = None
        if self.gpu:
            self.bytes = int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
            return
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        self.bytes = int(line.split()[1]) * 1024
        except OSError:
            pass


COMPUTE_DTYPE = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}


def matmul_peaks(precisions):
    """{compute dtype: best GFLOP/s of a 2048^3 matrix product}: the machine's practical ceiling, for each
    precision's compute dtype."""
    peaks = {}
    for precision in precisions:
        dtype = COMPUTE_DTYPE[precision]
        if dtype.name not in peaks:
            peaks[dtype.name] = flops_lib.matmul_peak(dtype) / 1e9
    return peaks
