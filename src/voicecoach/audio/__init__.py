"""From clips and a plan to one PCM stream: format, loudness, mix, music, tones."""
