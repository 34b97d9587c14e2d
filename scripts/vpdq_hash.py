"""Meta's reference vPDQ (PyPI `vpdq`, its C++ hasher) on one video: one
line per hashed frame, `frame,quality,hash,timestamp`, as its own hash
files are written. Used by tests/video and benches/video.sh as the oracle.

    python vpdq_hash.py VIDEO SECONDS_PER_HASH [THREADS]
"""
import sys
import time

import vpdq

video, seconds = sys.argv[1], float(sys.argv[2])
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 0
t0 = time.monotonic()
features = vpdq.computeHash(video, seconds_per_hash=seconds, thread_count=threads)
elapsed = time.monotonic() - t0
for f in features:
    print(f"{f.frame_number},{f.quality},{f.hex},{f.timestamp:.3f}")
print(f"{len(features)} frames in {elapsed:.3f} s", file=sys.stderr)
