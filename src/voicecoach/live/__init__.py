"""From the PCM stream to the speakers, in real time."""
