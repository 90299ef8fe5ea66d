"""voicecoach: a text-to-speech audio coach for back and stretching routines."""

__version__ = "0.1.0"
