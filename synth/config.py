"""Configuration of the synthetic corpus."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CLIP_PIXELS = 1 << 30
"""Largest clip rendered (frames x height x width): a clip's colour and depth are held in memory at once, so a
larger request would exhaust memory part-way instead of being refused up front."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synthetic corpus; the output is a pure function of it."""

    clips: int = 4
    """Number of clips; each clip is one freshly generated room."""
    seed: int = 0
    """Master seed; clip ``i`` uses ``numpy.random.default_rng([seed, i])``."""
    frames: int = 32
    """Frames per clip."""
    fps: int = 8
    """Frame rate written into the mp4 files (frames per second)."""
    height: int = 168
    """Frame height in pixels (a multiple of 2 for yuv420p; 168 = 6 x 28)."""
    width: int = 224
    """Frame width in pixels (a multiple of 2 for yuv420p; 224 = 8 x 28)."""
    fov_w_deg: float = 70.0
    """Horizontal field of view in degrees; square pixels, principal point at ``(W/2, H/2)``."""
    room_xy_m: tuple[float, float] = (3.5, 8.0)
    """Range of room width and depth (floor x and y extents) in metres."""
    room_height_m: tuple[float, float] = (2.5, 3.0)
    """Range of room height in metres."""
    objects: tuple[int, int] = (4, 8)
    """Inclusive range of objects (boxes) placed per room."""
    eye_height_m: tuple[float, float] = (1.2, 1.7)
    """Range of the camera's mean height above the floor in metres."""
    orbit_fraction: float = 0.45
    """Camera orbit semi-axes as a fraction of the room half-extents (0 = centre, 1 = walls)."""
    sweep_deg: tuple[float, float] = (60.0, 140.0)
    """Range of the yaw angle swept by the camera along its orbit over the clip, in degrees."""
    clearance_m: float = 0.35
    """Minimum horizontal distance between the camera path and any object footprint, in metres."""
    crf: int = 12
    """x264 constant rate factor (lower = higher quality); mpeg4 fallback uses an equivalent qscale."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if self.clips < 1:
            raise ValueError(f"SynthConfig.clips must be >= 1, got {self.clips}")
        if self.seed < 0:
            raise ValueError(f"SynthConfig.seed must be >= 0, got {self.seed}")
        if self.frames < 2:
            raise ValueError(f"SynthConfig.frames must be >= 2, got {self.frames}")
        if self.fps < 1:
            raise ValueError(f"SynthConfig.fps must be >= 1, got {self.fps}")
        if self.height < 16 or self.width < 16 or self.height % 2 or self.width % 2:
            raise ValueError(f"SynthConfig height/width must be even and >= 16, got {self.height}x{self.width}")
        if self.frames * self.height * self.width > MAX_CLIP_PIXELS:
            raise ValueError(f"SynthConfig frames x height x width must be <= {MAX_CLIP_PIXELS} pixels per clip (a clip "
                             f"is rendered in memory), got {self.frames}x{self.height}x{self.width}")
        if not 10.0 <= self.fov_w_deg <= 150.0:
            raise ValueError(f"SynthConfig.fov_w_deg must be in [10, 150], got {self.fov_w_deg}")
        if self.objects[0] < 0 or self.objects[1] < self.objects[0]:
            raise ValueError(f"SynthConfig.objects must be a range (lo <= hi, lo >= 0), got {self.objects}")
        if self.room_xy_m[0] < 3.0 or self.room_xy_m[1] < self.room_xy_m[0]:
            raise ValueError(f"SynthConfig.room_xy_m must be a range with lo >= 3 m, got {self.room_xy_m}")
        if not 0.0 < self.orbit_fraction < 0.9:
            raise ValueError(f"SynthConfig.orbit_fraction must be in (0, 0.9), got {self.orbit_fraction}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"SynthConfig.crf must be in [0, 51], got {self.crf}")
