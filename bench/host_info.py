"""host_info.py: what the benchmark runners share (imported by bench/cpu/run_cpu.py and
bench/gpu/run_gpu.py): facts about the machine for the headers of bench/results, and times as text."""
import platform


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def fmt_seconds(sec, us_digits=2, ms_digits=2):
    """sec in us, ms or s, whichever reads best."""
    if sec < 1e-3:
        return "%.*f us" % (us_digits, sec * 1e6)
    if sec < 1:
        return "%.*f ms" % (ms_digits, sec * 1e3)
    return "%.2f s" % sec
