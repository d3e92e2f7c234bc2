"""The OCR readers ``--ocr`` offers, by name: light entries, so the command line lists them without RapidOCR.

An index keeps the reader that read its text (recsys.textstore.reader_settings_of), so its later covers and its
query covers are read alike.
"""

from __future__ import annotations

from index.errors import SleeveError
from index.registry import Entry, Registry

OCR_READERS: Registry[Entry] = Registry("OCR reader", SleeveError)
"""``loader`` names the reader's recsys.ocr.ReaderSettings."""
OCR_READERS.register(Entry(
    "exact", "recsys.ocr:OPENVINO", "RapidOCR's own readings, about 0.1 s a cover on 2 cores"
))
OCR_READERS.register(Entry(
    "fast", "recsys.ocr:FAST",
    "bfloat16 and a smaller detector, 2.4x as fast on a CPU with bfloat16 units; readings differ, measured search "
    "and genre quality does not (docs/words.md)",
))
