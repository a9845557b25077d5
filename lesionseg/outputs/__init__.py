"""What inference writes, one writer per output (:class:`~lesionseg.outputs.base.Writer`):

- :mod:`~lesionseg.outputs.masks`: the lesion mask, the cord mask, the soft map and the uncertainty map, on the
  input's native grid;
- :mod:`~lesionseg.outputs.lesion_table`: ``<stem>_lesions.csv`` and ``.json``;
- :mod:`~lesionseg.outputs.dicom_seg`: a DICOM SEG for DICOM inputs;
- :class:`lesionseg.reporting.inference_html.ReportWriter`: the HTML report;
- :mod:`~lesionseg.outputs.summary`: the batch's ``summary.csv``.

Every file goes through :mod:`~lesionseg.outputs.tables` (CSV, JSON) or :mod:`lesionseg.io.atomic`: atomically.
"""
