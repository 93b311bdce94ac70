"""PostHog ``desktop_recordings`` client and sync worker (Qt-free)."""
