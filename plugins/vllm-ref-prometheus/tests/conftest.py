import sys
from pathlib import Path

# The helper modules next to the tests (refprom_*) are imported by name, also by vLLM processes
# through PYTHONPATH.
sys.path.insert(0, str(Path(__file__).parent))
