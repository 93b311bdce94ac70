"""Audio capture: microphone and system audio, on one clock, to disk as recorded (Qt-free)."""
