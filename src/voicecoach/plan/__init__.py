"""From a routine to a timeline of cues, pauses and chimes, in frames."""
