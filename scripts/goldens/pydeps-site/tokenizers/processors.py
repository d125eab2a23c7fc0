"""Import-only placeholder submodule tokenizers.processors (see tokenizers/__init__.py)."""
from . import _placeholder


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    cls = _placeholder(name)
    globals()[name] = cls
    return cls
