"""Scene description (room + objects), its random generation and its JSON form (``scene.json``).

World frame: metres, the floor is ``z = 0``, z points up, the room spans ``[0, size_x] x [0, size_y]``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# Class name -> (width range, depth range, height range) in metres; width is along the object's local x.
OBJECT_CLASSES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "chair": ((0.45, 0.6), (0.45, 0.6), (0.8, 1.0)),
    "table": ((0.8, 1.6), (0.6, 1.0), (0.7, 0.78)),
    "sofa": ((1.6, 2.2), (0.8, 1.0), (0.75, 0.9)),
    "bed": ((1.4, 1.9), (1.9, 2.1), (0.5, 0.65)),
    "cabinet": ((0.6, 1.2), (0.4, 0.6), (0.8, 1.9)),
    "tv": ((0.9, 1.4), (0.1, 0.2), (0.55, 0.85)),
    "refrigerator": ((0.6, 0.8), (0.6, 0.75), (1.6, 1.9)),
    "lamp": ((0.3, 0.45), (0.3, 0.45), (1.2, 1.7)),
    "plant": ((0.3, 0.6), (0.3, 0.6), (0.5, 1.3)),
    "stool": ((0.3, 0.4), (0.3, 0.4), (0.45, 0.7)),
}


@dataclass(frozen=True)
class Room:
    """Axis-aligned room ``[0, size[0]] x [0, size[1]] x [0, size[2]]`` in metres (z up)."""

    size: tuple[float, float, float]
    """Extents along world x, y, z (height) in metres."""

    @property
    def floor_area_m2(self) -> float:
        """Floor area in square metres."""
        return self.size[0] * self.size[1]


@dataclass(frozen=True)
class SceneObject:
    """A box resting on the floor, rotated by ``yaw`` about the vertical axis."""

    index: int
    """Position in ``Scene.objects``; also the object id in rendered id maps."""
    cls: str
    """Class name (VSI-Bench-like vocabulary, see ``OBJECT_CLASSES``)."""
    center: tuple[float, float, float]
    """Box centre in world metres (``center[2] = size[2] / 2``: it rests on the floor)."""
    size: tuple[float, float, float]
    """Full extents along the object's local x, y and world z, in metres."""
    yaw: float
    """Rotation about world z in radians (local x -> world ``(cos yaw, sin yaw, 0)``)."""
    color: tuple[int, int, int]
    """Base RGB colour (0-255) before texture and shading."""

    def rotation(self) -> np.ndarray:
        """World-from-local rotation ``[3, 3]``."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def footprint(self) -> np.ndarray:
        """Floor corners ``[4, 2]`` in world metres."""
        hx, hy = self.size[0] / 2, self.size[1] / 2
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        return local @ self.rotation()[:2, :2].T + np.asarray(self.center[:2])


@dataclass
class Scene:
    """One room with its objects, plus per-frame visibility filled in by the renderer."""

    scene_id: str
    """Unique scene key."""
    room: Room
    """The room box."""
    objects: list[SceneObject]
    """Objects resting on the floor; no two intersect, none crosses a wall."""
    first_visible_frame: list[int | None] = field(default_factory=list)
    """Per object: index of the first frame in which it covers at least one pixel (``None`` if never)."""
    visible_pixels: list[list[int]] = field(default_factory=list)
    """Per object, per frame: number of pixels where the object is the visible surface."""

    def to_json(self) -> dict:
        return {
            "scene_id": self.scene_id,
            "world_frame": "metres; floor z=0, z up; room spans [0,sx]x[0,sy]x[0,sz]",
            "room": {"size": list(self.room.size), "floor_area_m2": self.room.floor_area_m2},
            "objects": [
                {**asdict(o), "center": list(o.center), "size": list(o.size), "color": list(o.color)}
                for o in self.objects
            ],
            "first_visible_frame": self.first_visible_frame,
            "visible_pixels": self.visible_pixels,
        }

    @classmethod
    def from_json(cls, d: dict, source: str = "scene.json") -> Scene:
        try:
            room = Room(size=tuple(float(v) for v in d["room"]["size"]))
            objects = [
                SceneObject(
                    index=int(o["index"]), cls=str(o["cls"]), center=tuple(float(v) for v in o["center"]),
                    size=tuple(float(v) for v in o["size"]), yaw=float(o["yaw"]),
                    color=tuple(int(v) for v in o["color"]),
                )
                for o in d["objects"]
            ]
            return cls(
                scene_id=str(d["scene_id"]), room=room, objects=objects,
                first_visible_frame=list(d.get("first_visible_frame", [])),
                visible_pixels=[list(map(int, v)) for v in d.get("visible_pixels", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: malformed scene description ({exc!r})") from exc


def load_scene(gt_dir: str | Path) -> Scene:
    """Read ``gt_dir/scene.json`` into a :class:`Scene`."""
    path = Path(gt_dir) / "scene.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scene.json in ground-truth folder")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return Scene.from_json(data, source=str(path))


def _polygons_overlap(a: np.ndarray, b: np.ndarray, margin: float) -> bool:
    """Separating-axis test for two convex 2-D polygons ``[N, 2]``, inflated by ``margin`` metres."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for nx, ny in np.stack([-edges[:, 1], edges[:, 0]], -1):
            n = np.array([nx, ny]) / np.hypot(nx, ny)
            pa, pb = a @ n, b @ n
            if pa.max() + margin < pb.min() or pb.max() + margin < pa.min():
                return False
    return True


def _point_polygon_distance(p: np.ndarray, poly: np.ndarray) -> float:
    """Distance from 2-D point to a convex polygon (0 inside)."""
    edges = np.roll(poly, -1, axis=0) - poly
    rel = p - poly
    cross = edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]
    if np.all(cross >= 0) or np.all(cross <= 0):
        return 0.0
    t = np.clip(np.sum(rel * edges, -1) / np.sum(edges * edges, -1), 0, 1)
    return float(np.min(np.linalg.norm(rel - t[:, None] * edges, axis=-1)))


def place_objects(
    rng: np.random.Generator, room: Room, count: int, keep_out: np.ndarray, clearance: float,
    wall_margin: float = 0.05, gap: float = 0.1, tries: int = 200,
) -> list[SceneObject]:
    """Rejection-sample ``count`` non-intersecting boxes inside ``room`` away from ``keep_out`` points.

    ``keep_out`` ``[P, 2]`` are floor positions (the camera path) that must stay ``clearance`` metres
    from every footprint. Objects that cannot be placed after ``tries`` attempts are skipped.
    """
    classes = list(OBJECT_CLASSES)
    objects: list[SceneObject] = []
    for _ in range(count):
        for _ in range(tries):
            cls = classes[int(rng.integers(len(classes)))]
            size = tuple(float(rng.uniform(*r)) for r in OBJECT_CLASSES[cls])
            yaw = float(rng.uniform(-np.pi, np.pi))
            cx = float(rng.uniform(0, room.size[0]))
            cy = float(rng.uniform(0, room.size[1]))
            cand = SceneObject(len(objects), cls, (cx, cy, size[2] / 2), size, yaw,
                               tuple(int(v) for v in rng.integers(40, 230, size=3)))
            fp = cand.footprint()
            if fp.min() < wall_margin or np.any(fp.max(0) > np.asarray(room.size[:2]) - wall_margin):
                continue
            if any(_polygons_overlap(fp, o.footprint(), gap) for o in objects):
                continue
            if any(_point_polygon_distance(p, fp) < clearance for p in keep_out):
                continue
            objects.append(cand)
            break
    return objects
