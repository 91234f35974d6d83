import sys
from pathlib import Path

# The scheduler's end-to-end helpers (its contended workload and its test-only recorder of the
# engine core's admissions): the endpoint's weight route is checked the way the scheduler's own
# tests check the policy, from the engine's record. Reused, not copied, on purpose.
SCHED_TESTS = Path(__file__).resolve().parents[2] / "vllm-ref-scheduler" / "tests"
sys.path.insert(0, str(SCHED_TESTS))
