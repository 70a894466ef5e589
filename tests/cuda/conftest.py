"""Run the CUDA backend tests on numba's CUDA simulator unless a real GPU is asked for.

numba chooses between the CUDA simulator and a real device once, when ``numba.cuda`` is
first imported, from ``NUMBA_ENABLE_CUDASIM`` as numba's config read it. pytest imports this
file before the test modules of this folder, so setting the variable here (and refreshing
numba's config, which pytest's warning filters may already have imported) is enough as
long as nothing earlier in the same pytest process imported ``numba.cuda`` (``numlstm``
itself only imports it when a layer asks for ``device="cuda"``/``"auto"``). If something
did, the tests below fail with a message saying so; set ``NUMBA_ENABLE_CUDASIM=1`` for the
whole pytest process then.

Set ``NUMLSTM_TEST_CUDA=gpu`` to run the same tests on a real GPU instead.
"""

import os
import sys

import pytest

REAL_GPU = os.environ.get("NUMLSTM_TEST_CUDA", "").strip().lower() == "gpu"

if REAL_GPU:
    import numpy as np

    if not hasattr(np, "row_stack"):
        # numba-cuda 0.30 registers an overload for np.row_stack, which NumPy 2.5 removed;
        # without it no kernel compiles on such an install.
        np.row_stack = np.vstack
else:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba.core.config" in sys.modules:
        # pytest's filterwarnings setting (numba.core.errors...) imports numba before any
        # conftest; numba.cuda reads numba's config, so refresh it from the environment.
        sys.modules["numba.core.config"].reload_config()


@pytest.fixture(autouse=True)
def _cuda_target():
    """Fail clearly when the tests would not run where they were meant to."""
    from numba import cuda

    from numlstm.nn.cuda_backend import _simulator_active

    if REAL_GPU:
        if _simulator_active() or not cuda.is_available():
            pytest.fail("NUMLSTM_TEST_CUDA=gpu but no real CUDA GPU is usable "
                        "(or NUMBA_ENABLE_CUDASIM is set)")
    elif not _simulator_active():
        pytest.fail("numba.cuda was imported before tests/cuda/conftest.py could switch on "
                    "the CUDA simulator; run pytest with NUMBA_ENABLE_CUDASIM=1")
