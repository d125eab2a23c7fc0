"""Import-only placeholder for the Rust `tokenizers` package.

transformers 4.44 imports names from `tokenizers` at module level in a few files (integrations/ggml.py,
convert_slow_tokenizer.py). There is deliberately NO tokenizers-*.dist-info next to this folder, so
transformers' is_tokenizers_available() stays False and only slow (pure-Python) tokenizers are used.
Any attribute is a placeholder class that raises when instantiated.
"""
__version__ = "0.0.0+placeholder"


def _placeholder(name):
    def __init__(self, *a, **k):
        raise ImportError(f"tokenizers.{name}: the `tokenizers` package is only a placeholder here")

    return type(name, (), {"__init__": __init__, "__module__": "tokenizers"})


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    cls = _placeholder(name)
    globals()[name] = cls
    return cls
