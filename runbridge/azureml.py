"""The explicit opt-in that lets notebooks and plain scripts keep ``from azureml.core import ...``.

``import runbridge.azureml`` (one line at the top of a script or notebook) or ``%load_ext
runbridge`` (IPython, Jupyter) puts runbridge's stand-in for ``azureml.core`` first on the import
path, the same one ``runbridge run`` gives submitted scripts. When the real Azure ML SDK is
installed nothing changes (a warning says so): the real SDK always wins. Nothing else imports
this module.
"""

from __future__ import annotations

import importlib
import sys
import warnings

from .scripts.environment import SHIM_DIR, azureml_importable

__all__ = ["install", "installed"]


def installed() -> bool:
    """Whether runbridge's ``azureml.core`` stand-in is on this interpreter's import path."""
    return str(SHIM_DIR) in sys.path


def install() -> bool:
    """Make ``azureml.core`` resolve to runbridge in this interpreter, unless the Azure ML SDK
    is installed (then warn and leave it). Returns whether the stand-in is in use."""
    if installed():
        return True
    if azureml_importable():
        warnings.warn("the Azure ML SDK (azureml.core) is installed: runbridge leaves it in place, "
                      "so `from azureml.core import Run` is the real SDK", RuntimeWarning, stacklevel=2)
        return False
    sys.path.insert(0, str(SHIM_DIR))
    package = sys.modules.get("azureml")  # another azureml.* distribution, already imported
    path = getattr(package, "__path__", None)
    if isinstance(path, list) and str(SHIM_DIR / "azureml") not in path:
        path.insert(0, str(SHIM_DIR / "azureml"))
    importlib.invalidate_caches()
    return True


install()
