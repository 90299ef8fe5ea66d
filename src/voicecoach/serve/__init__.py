"""`voicecoach serve`: tracks, a podcast feed and a phone page for the home network."""
