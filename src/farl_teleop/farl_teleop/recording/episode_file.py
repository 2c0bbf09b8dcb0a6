"""One demonstration episode as one MCAP file, the way rosbag2 writes them (no ROS needed here).

Why MCAP with ROS 2 message definitions: `ros2 bag info`, Foxglove and
`rosbags` open the file as it is (profile `ros2`, schemas in `ros2msg` with
every dependency inlined, CDR payloads), so a recorded demo is inspectable
with the ordinary tools and not only through `farl demos`.

Why written incrementally: the recorder may be killed (kill -9, power loss) in
the middle of an episode. Each episode has its own file, so earlier episodes
are complete and closed; the running one is written under the name
`<stem>.partial.mcap` in small chunks that are flushed to the kernel at least
every `flush_s`, so at most that much is lost, and only `close()` renames it to
`<stem>.mcap`. A file whose name still says `partial` is an interrupted
episode, readable up to its last whole chunk (`episode_reader`).

Episode metadata (task, kind, operator, config hash, outcome, labels with
times) is an MCAP metadata record named `farl.episode` holding one JSON
string: written once at the start (status `recording`) and again, complete, at
the close (status `complete`); a reader takes the last one.
"""
from __future__ import annotations

import json
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from mcap.writer import CompressionType, Writer

METADATA_NAME = "farl.episode"
PARTIAL_SUFFIX = ".partial.mcap"
FINAL_SUFFIX = ".mcap"
DISCARDED_DIR = "discarded"
LIBRARY = "farl_teleop"
# ~0.5 s of 100 Hz state: small enough that a killed recorder loses little, big enough to compress.
CHUNK_BYTES = 64 * 1024


@lru_cache(maxsize=None)
def message_definition(msg_type: str) -> str:
    """The ros2msg text of a type with its dependencies inlined, as rosbag2 stores it (e.g. geometry_msgs/msg/PoseStamped)."""
    text, _ = _typestore().generate_msgdef(msg_type, ros_version=2)
    return text


@lru_cache(maxsize=1)
def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


class EpisodeFile:
    """Writes one episode: `write()` serialized (CDR) messages as they arrive, then `close()` or `discard()`."""

    def __init__(self, folder: str | Path, stem: str, metadata: dict[str, Any], flush_s: float = 0.5,
                 chunk_bytes: int = CHUNK_BYTES):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stem = stem
        self.path = self.folder / f"{stem}{PARTIAL_SUFFIX}"
        self.metadata = dict(metadata, status="recording")
        self.flush_s = flush_s
        self._stream: BinaryIO = open(self.path, "wb")
        self._writer = Writer(self._stream, chunk_size=chunk_bytes, compression=CompressionType.ZSTD)
        self._writer.start(profile="ros2", library=LIBRARY)
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.bytes_in = 0
        self._last_flush = time.monotonic()
        self._writer.add_metadata(METADATA_NAME, {"json": json.dumps(self.metadata)})
        self.flush()

    def _channel(self, topic: str, msg_type: str) -> int:
        channel = self._channels.get(topic)
        if channel is None:
            schema = self._schemas.get(msg_type)
            if schema is None:
                schema = self._writer.register_schema(msg_type, "ros2msg", message_definition(msg_type).encode())
                self._schemas[msg_type] = schema
            # rosbag2 keeps the publisher's QoS here; readers accept an empty list.
            channel = self._writer.register_channel(topic, "cdr", schema, {"offered_qos_profiles": ""})
            self._channels[topic] = channel
        return channel

    def write(self, topic: str, msg_type: str, data: bytes, log_time_ns: int | None = None,
              publish_time_ns: int | None = None) -> None:
        """One CDR-serialized message (what an rclpy raw subscription delivers)."""
        now = time.time_ns() if log_time_ns is None else log_time_ns
        channel = self._channel(topic, msg_type)
        sequence = self.counts.get(topic, 0)
        self._writer.add_message(channel, log_time=now, data=bytes(data),
                                 publish_time=publish_time_ns if publish_time_ns is not None else now,
                                 sequence=sequence)
        self.counts[topic] = sequence + 1
        self.bytes_in += len(data)
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Hand what is written to the kernel (it survives the process being killed; not a power loss)."""
        self._stream.flush()
        self._last_flush = time.monotonic()

    def close(self, metadata: dict[str, Any]) -> Path:
        """Final metadata, index and footer; the file gets its final name. Returns it."""
        self.metadata.update(metadata, status="complete",
                             message_counts=dict(self.counts))
        self._writer.add_metadata(METADATA_NAME, {"json": json.dumps(self.metadata)})
        self._writer.finish()
        self._stream.close()
        final = self.folder / f"{self.stem}{FINAL_SUFFIX}"
        os.replace(self.path, final)
        self.path = final
        return final

    def discard(self, metadata: dict[str, Any]) -> Path:
        """Close it and move it to <folder>/discarded/ (kept, not deleted: a mistaken discard can be undone)."""
        closed = self.close({**metadata, "discarded": True})
        target = self.folder / DISCARDED_DIR / closed.name
        target.parent.mkdir(exist_ok=True)
        os.replace(closed, target)
        self.path = target
        return target


def serialize(msg_type: str, message: Any) -> bytes:
    """CDR bytes of a rosbags message object (tests and tools without rclpy)."""
    return bytes(_typestore().serialize_cdr(message, msg_type))


def message_types():
    """The rosbags message classes (tests build messages with them)."""
    return _typestore().types
