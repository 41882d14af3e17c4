"""From class probabilities to objects: scipy and scikit-image only, never torch, napari or Qt.

``objects`` holds the public functions (re-exported here); ``split`` splits one region's mask
into objects, ``windows`` walks a plane too large to split at once, ``components``, ``holes``
and ``hmaxima`` are the pieces it needs, ``memory`` gives freed memory back to the system.
"""

from .objects import Instances, instance_labels, instances_from_semantic, keep_ids, semantic_labels

__all__ = ["Instances", "instance_labels", "instances_from_semantic", "keep_ids", "semantic_labels"]
