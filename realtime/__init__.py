"""Real-time progress for the video-processing pipeline."""

from .tracker import Tracker

__all__ = ["Tracker"]
__version__ = "0.1.0"
