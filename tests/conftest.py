"""Test-session setup shared by every test folder.

CUDA kernels are tested on numba's CUDA simulator unless ``NUMLSTM_TEST_CUDA=gpu`` asks for a
real GPU. numba reads ``NUMBA_ENABLE_CUDASIM`` when ``numba.cuda`` is first imported, so the
variable is set here, before any test module imports numlstm. pytest's warning filters may
have imported numba's config already; it is refreshed from the environment then. The
simulator never serves ``device="auto"`` (see ``numlstm.nn.backend.resolve_device``), so CPU
tests are unaffected.
"""

import os
import sys

if os.environ.get("NUMLSTM_TEST_CUDA", "").strip().lower() != "gpu":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba.core.config" in sys.modules:
        sys.modules["numba.core.config"].reload_config()

try:
    from hypothesis import settings
except ImportError:  # only the property tests need it; they import-skip without it
    settings = None
if settings is not None:
    # Reproducible property tests in CI: fixed examples, no wall-clock deadline (numba
    # compiles on first call).
    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("dev", deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
