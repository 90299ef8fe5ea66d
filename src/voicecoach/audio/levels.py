"""The default loudness and music duck: in a module of their own, so a command reads its option
defaults without importing the mixer (and numpy)."""

DEFAULT_LOUDNESS = -16.0
DEFAULT_DUCK = -12.0
