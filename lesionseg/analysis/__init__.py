"""What a clinician reads beyond the masks: lesion morphometry (:mod:`~lesionseg.analysis.morphometry`),
vertebral levels (:mod:`~lesionseg.analysis.levels`) and the cord mask's coverage and area
(:mod:`~lesionseg.analysis.cord_qc`). Pure array code on the canonical (RAS) grid; every
definition is in ``docs/lesion-analysis.md``."""
