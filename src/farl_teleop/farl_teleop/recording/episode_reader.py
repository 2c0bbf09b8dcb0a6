"""Reading recorded episodes back: metadata, messages by topic, and what is wrong with a file.

Reads record by record (MCAP's stream reader), never through the summary at
the end, so an interrupted (`.partial.mcap`) or truncated file still yields
everything up to its last whole chunk, and the problem is one line naming the
file. Messages are decoded with `rosbags` from the schemas stored in the file
(no ROS needed: `farl demos` runs on a learning machine too).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .episode_file import FINAL_SUFFIX, METADATA_NAME, PARTIAL_SUFFIX, _typestore

COMPLETE, PARTIAL, DAMAGED = "complete", "partial", "damaged"


@dataclass
class Episode:
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)  # topic -> [(log_time_ns, msg)]
    types: dict[str, str] = field(default_factory=dict)  # topic -> message type
    problem: str = ""  # one line: why the file is not a complete episode ('' = it is)

    @property
    def status(self) -> str:
        if self.problem and not self.metadata:
            return DAMAGED
        if self.problem or self.metadata.get("status") != COMPLETE or self.metadata.get("interrupted"):
            return PARTIAL
        return COMPLETE

    @property
    def usable(self) -> bool:
        return self.status == COMPLETE

    @property
    def start_ns(self) -> int | None:
        times = [t for msgs in self.messages.values() for t, _ in msgs[:1]]
        return min(times) if times else None

    @property
    def duration_s(self) -> float:
        if "duration_s" in self.metadata:
            return float(self.metadata["duration_s"])
        firsts = [msgs[0][0] for msgs in self.messages.values() if msgs]
        lasts = [msgs[-1][0] for msgs in self.messages.values() if msgs]
        return (max(lasts) - min(firsts)) / 1e9 if firsts else 0.0

    def count(self, topic: str) -> int:
        return len(self.messages.get(topic, ()))


def episode_files(folder: str | Path) -> list[Path]:
    """The episode files of a recording folder (complete and partial), in name order; discarded ones excluded."""
    folder = Path(folder)
    return sorted(p for p in folder.glob(f"*{FINAL_SUFFIX}") if p.is_file())


def read_episode(path: str | Path, decode: bool = True, topics: set[str] | None = None) -> Episode:
    """Everything readable in one file; `problem` says, in one line, what stopped the reading."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Metadata, Schema
    from mcap.stream_reader import StreamReader

    path = Path(path)
    episode = Episode(path)
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    store = _typestore() if decode else None
    try:
        with path.open("rb") as stream:
            for record in StreamReader(stream, skip_magic=False).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
                    episode.types[record.topic] = schemas.get(record.schema_id, "")
                elif isinstance(record, Message):
                    topic, msg_type = channels[record.channel_id]
                    if topics is not None and topic not in topics:
                        continue
                    value = store.deserialize_cdr(record.data, msg_type) if store is not None else record.data
                    episode.messages.setdefault(topic, []).append((record.log_time, value))
                elif isinstance(record, Metadata) and record.name == METADATA_NAME:
                    episode.metadata = json.loads(record.metadata["json"])
    except (McapError, EOFError, ValueError, KeyError, OSError, RuntimeError, AssertionError) as error:
        episode.problem = _describe(path, error, episode)
    except Exception as error:  # noqa: BLE001 - a damaged file may fail anywhere inside a decoder
        episode.problem = _describe(path, error, episode)
    if path.name.endswith(PARTIAL_SUFFIX):
        read = sum(len(m) for m in episode.messages.values())
        episode.problem = (f"{path}: partial episode (recording interrupted, or still running): "
                           f"{read} messages readable")
    elif not episode.problem:
        if not episode.metadata:
            episode.problem = f"{path}: no {METADATA_NAME} metadata: not a FARL episode file"
    for messages in episode.messages.values():
        messages.sort(key=lambda item: item[0])
    return episode


def _describe(path: Path, error: BaseException, episode: Episode) -> str:
    read = sum(len(m) for m in episode.messages.values())
    name = type(error).__name__
    text = str(error).splitlines()[0] if str(error) and str(error) != name else "unexpected end of file"
    if read == 0 and not episode.metadata:
        return f"{path}: not a readable MCAP file ({name}: {text})"
    return f"{path}: truncated or corrupt after {read} messages ({name}: {text})"


def iter_episodes(folder: str | Path, decode: bool = True) -> Iterator[Episode]:
    for path in episode_files(folder):
        yield read_episode(path, decode=decode)
