"""host_info.py: facts about the machine a benchmark ran on, for the headers of bench/results
(imported by bench/cpu/run_cpu.py and bench/gpu/run_gpu.py)."""
import platform


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
