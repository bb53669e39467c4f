"""Audio I/O, loudness and music analysis.

Submodules are imported explicitly (``from core.audio import io``); this package imports
nothing heavy at import time.
"""

from __future__ import annotations
