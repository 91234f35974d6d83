import sys
from pathlib import Path

# Helper modules of these tests (sched_helpers, sched_checks) are imported by name: by the tests
# here, by the benchmark, and inside vLLM processes through PYTHONPATH.
sys.path.insert(0, str(Path(__file__).parent))
