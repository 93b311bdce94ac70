"""Streaming and offline speech recognition with faster-whisper (Qt-free)."""
