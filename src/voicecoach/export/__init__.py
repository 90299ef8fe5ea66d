"""From the PCM stream to files: MP3 encoding, tags, tracks, output checks."""
