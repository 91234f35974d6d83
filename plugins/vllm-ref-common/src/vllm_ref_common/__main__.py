"""python -m vllm_ref_common doctor (see doctor.py)."""

import sys

from .doctor import main

sys.exit(main())
