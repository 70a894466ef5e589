"""asv benchmarks of numlstm, and ``compare.py``, a side-by-side timing against PyTorch.

asv imports this package without putting the repository root on ``sys.path``; the benchmarks
import the numlstm installed in asv's environment. For ``asv run --python=same`` on a
checkout where numlstm is not installed (no ``pip install -e .``), the working tree is used
instead -- only then, so a virtualenv run never benchmarks the wrong code.
"""

import os
import sys

if os.environ.get("ASV_ENV_TYPE", "existing") == "existing":
    try:
        import numlstm  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
