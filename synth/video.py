"""Writing RGB frames to mp4: the synthetic corpus uses ``geovr.shared.video.write_mp4`` (PyAV,
libx264 yuv420p, mpeg4 fallback), re-exported here for its callers."""

from geovr.shared.video import write_mp4

__all__ = ["write_mp4"]
