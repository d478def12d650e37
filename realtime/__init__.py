"""Real-time progress for the video-processing pipeline.

`from realtime import Tracker` is what a pipeline's worker needs: it stores a message and
tells the serving nodes, and loads none of the web server. The errors a caller handles all
derive from `DomainError`.
"""

from .domain.errors import Conflict, DomainError, Invalid, NotFound
from .tracker import Tracker

__all__ = ["Conflict", "DomainError", "Invalid", "NotFound", "Tracker"]
__version__ = "0.1.0"
