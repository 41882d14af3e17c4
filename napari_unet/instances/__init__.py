"""From class probabilities to objects: scipy and scikit-image only, never torch, napari or Qt.

``objects`` holds the public functions (re-exported here); ``split`` splits one region's mask
into objects, ``windows`` walks a plane too large to split at once, ``components``, ``holes``
and ``hmaxima`` are the pieces it needs, ``memory`` gives freed memory back to the system;
``semantic`` (numpy only) makes class labels. The names load on first use.
"""

import importlib

# loaded on first use (PEP 562), so that class labels alone (``semantic``) do not load scikit-image
_HOME = {"Instances": "objects", "instance_labels": "objects", "instances_from_semantic": "objects",
         "keep_ids": "objects", "semantic_labels": "semantic"}
__all__ = list(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
