"""Where bytes are kept: the clip cache, atomic writes, spooled clips."""
