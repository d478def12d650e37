"""Real-time progress for the video-processing pipeline.

`from realtime import Tracker` (async) or `SyncTracker` (blocking: Celery, RQ, threads) is what
a pipeline's worker needs: it stores a message and tells the serving nodes, and loads none of
the web server. The errors a caller handles all derive from `DomainError`: `Invalid` (400: the
message does not validate or does not fit the job's state), `NotFound` (404: no such job) and
`Conflict` (409: the job is finished, or another user's).
"""

from .domain.errors import Conflict, DomainError, Invalid, NotFound
from .sync import SyncTracker
from .tracker import Tracker

__all__ = ["Conflict", "DomainError", "Invalid", "NotFound", "SyncTracker", "Tracker"]
__version__ = "0.1.0"
