"""Run every benchmark in bench/ and stop at the first that misses its target."""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
for script in sorted(here.glob("bench_*.py")):
    print(f"=== {script.name} ===", flush=True)
    result = subprocess.run([sys.executable, str(script)], cwd=here.parent)
    if result.returncode:
        sys.exit(result.returncode)
