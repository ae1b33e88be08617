"""Vertebral levels from a body mask (pure numpy): :mod:`~vertebrafat.levels.instances` splits it
into bodies, :mod:`~vertebrafat.levels.spine` orders them along the spine, the sacrum cue is
:mod:`~vertebrafat.levels.sacrum`, the rib/T12 cue :mod:`~vertebrafat.levels.ribs`, the count
:mod:`~vertebrafat.levels.naming`, and :mod:`~vertebrafat.levels.labeller` puts them together
(:func:`~vertebrafat.levels.labeller.label_vertebrae`)."""
