"""Entry point for `python -m voicecoach`."""

from voicecoach._entry import main

main()
