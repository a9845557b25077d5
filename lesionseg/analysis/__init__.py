"""What a clinician reads beyond the masks: lesion morphometry (:mod:`~lesionseg.analysis.morphometry`) and
vertebral levels (:mod:`~lesionseg.analysis.levels`). Pure array code on the canonical (RAS) grid; every
definition is in ``docs/lesion-analysis.md``."""
