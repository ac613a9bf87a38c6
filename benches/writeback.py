"""Early writeback, without the pipeline (BENCHMARKS.md, session 40).

Writes 147 MiB in 1 MiB writes, each after BUSY seconds of CPU (the pipeline's
work between batches), then `fdatasync`s the file; with WRITEBACK=1 it asks
the kernel to start writing every 8 MiB as `JsonLines` does
(`sync_file_range(SYNC_FILE_RANGE_WRITE)`). Linux only.

    python3 benches/writeback.py WRITEBACK BUSY [DIR]    # e.g. 0 0.003, then 1 0.003
"""
import ctypes
import os
import sys
import time

SYNC_FILE_RANGE_WRITE = 2

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]

writeback = sys.argv[1] == "1"
busy = float(sys.argv[2])
path = os.path.join(sys.argv[3] if len(sys.argv) > 3 else ".", "writeback-bench.bin")
fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
chunk = b"x" * (1 << 20)
start = time.time()
written = started = 0
for _ in range(147):
    until = time.perf_counter() + busy
    while time.perf_counter() < until:
        pass
    os.write(fd, chunk)
    written += len(chunk)
    if writeback and written - started >= 8 << 20:
        if libc.sync_file_range(fd, started, written - started, SYNC_FILE_RANGE_WRITE) != 0:
            raise OSError(ctypes.get_errno(), "sync_file_range")
        started = written
wrote = time.time()
os.fdatasync(fd)
synced = time.time()
print(
    f"writeback={int(writeback)} cpu={busy * 147:.2f}s write={wrote - start:.3f}s "
    f"sync={synced - wrote:.3f}s total={synced - start:.3f}s"
)
os.close(fd)
os.unlink(path)
