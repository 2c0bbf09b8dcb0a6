"""Which camera images may be paired with the arm's pose: only those taken while the arm stood still.

A calibration pair is (TCP pose now, marker pose in an image). Both must show the
same instant. On a loaded PC the image the camera delivers can be a few hundred
milliseconds older than the TCP pose, and an arm that has not quite settled after
its move has moved on since: the pair disagrees by millimetres and the solver's
residual says so (measured in simulation with the machine saturated: 13.5 mm,
67 mm from the true camera pose). So the gate keeps the TCP pose the arm has held
since it last moved, and admits only images stamped after that moment.
"""
from __future__ import annotations

import numpy as np

from farl_perception.geometry import rotation_angle_deg

STILL_M = 0.0005     # the TCP counts as still while within this of where it stopped ...
STILL_DEG = 0.1      # ... and turned less than this


class StillnessGate:
    def __init__(self, still_m: float = STILL_M, still_deg: float = STILL_DEG):
        self.still_m, self.still_deg = still_m, still_deg
        self._reference: np.ndarray | None = None
        self.still_since: float | None = None
        """Stamp (s) of the first TCP pose of the current still period (None before any)."""

    def tcp(self, stamp_s: float, T_base_tcp: np.ndarray) -> bool:
        """Feed a TCP pose; False when it moved (the still period restarts at this stamp)."""
        T = np.asarray(T_base_tcp, float)
        if self._reference is not None:
            moved_m = float(np.linalg.norm(T[:3, 3] - self._reference[:3, 3]))
            if moved_m <= self.still_m and rotation_angle_deg(T[:3, :3], self._reference[:3, :3]) <= self.still_deg:
                return True
        self._reference, self.still_since = T, stamp_s
        return False

    def admits(self, image_stamp_s: float) -> bool:
        """An image taken after the arm stopped where it is now."""
        return self.still_since is not None and image_stamp_s >= self.still_since
