"""The silence before the first word, by what a session is played for (light: no model)."""

#: An exported track: Bluetooth speakers wake up in it.
EXPORT_LEAD_IN = 1.5
#: Live play starts at once; a phone served over the LAN gets a short pause to pick itself up.
PLAY_LEAD_IN, SERVE_LEAD_IN = 0.0, 1.0
#: Every lead-in a session may be played with (a made session keeps its minutes on each).
LEAD_INS = (PLAY_LEAD_IN, SERVE_LEAD_IN, EXPORT_LEAD_IN)
