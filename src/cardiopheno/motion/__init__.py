"""Motion tracking of short-axis cine slices: ED-to-every-frame in-plane displacement fields.

``track_slices`` registers every frame of the chosen slices to the ED frame at once, as one
batched optimisation in torch (CPU now, GPU when there is one); ``warp_points`` moves ED points
(contours) through the cycle with the result. No MIRTK, no downloaded weights.
"""

from cardiopheno.motion.register import (
    MotionSettings,
    SliceMotion,
    TrackingError,
    track_slices,
    warp_points,
)

__all__ = ["MotionSettings", "SliceMotion", "TrackingError", "track_slices", "warp_points"]
