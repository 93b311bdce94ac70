"""Everything Qt: the tray app, live transcript window, recordings browser and settings."""
