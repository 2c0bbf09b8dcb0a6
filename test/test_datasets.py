"""The dataset format: round trip, and one clear error line for every bad file."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from farl_common.errors import FarlInputError
from farl_learner.data import (FORMAT_VERSION, KIND_FAILURE, KIND_RECOVERY, KIND_TASK, Dataset, concat_datasets,
                               load_dataset, save_dataset)


def make_dataset(task: str = "bounded_push", n: int = 12, kind: int = KIND_TASK, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    done = np.zeros(n, bool)
    done[n // 2 - 1] = True
    timeout = np.zeros(n, bool)
    timeout[-1] = True
    return Dataset(
        task=task, obs=rng.normal(size=(n, 39)), action=rng.uniform(-1, 1, (n, 4)), reward=rng.normal(size=n),
        cost=done.astype(float), done=done, timeout=timeout, kind=np.full(n, kind),
        episode_id=np.repeat([0, 1], [n // 2, n - n // 2]), next_obs=rng.normal(size=(n, 39)),
        meta={"generator": "test", "seed": seed},
    )


def assert_one_line(error: FarlInputError, path, words: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert str(path) in message
    assert words in message


def test_round_trip(tmp_path):
    ds = make_dataset()
    path = save_dataset(tmp_path / "d.npz", ds)
    back = load_dataset(path, expect_task="bounded_push")
    for name, arr in ds.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), arr)
        assert getattr(back, name).dtype == arr.dtype
    assert back.meta["format_version"] == FORMAT_VERSION
    assert back.meta["kind_counts"] == {"task": 12, "recovery": 0, "failure": 0}
    assert back.meta["n_episodes"] == 2 and back.meta["n_failures"] == 1
    assert back.meta["generator"] == "test" and "created" in back.meta
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no temp file left behind


def test_concat_and_select():
    merged = concat_datasets([make_dataset(kind=KIND_TASK), make_dataset(kind=KIND_RECOVERY, seed=1)])
    assert len(merged) == 24 and merged.n_episodes == 4
    assert merged.kind_counts() == {"task": 12, "recovery": 12, "failure": 0}
    rec = merged.select(merged.kind == KIND_RECOVERY)
    assert len(rec) == 12 and set(rec.episode_id.tolist()) == {2, 3}
    with pytest.raises(ValueError):
        concat_datasets([make_dataset(), make_dataset(task="bounded_soccer")])


def test_inconsistent_arrays_rejected():
    ds = make_dataset()
    with pytest.raises(ValueError, match="rows"):
        Dataset(ds.task, ds.obs, ds.action[:-1], ds.reward, ds.cost, ds.done, ds.timeout, ds.kind,
                ds.episode_id, ds.next_obs)
    with pytest.raises(ValueError, match="kind"):
        Dataset(ds.task, ds.obs, ds.action, ds.reward, ds.cost, ds.done, ds.timeout, np.full(12, 7),
                ds.episode_id, ds.next_obs)


def test_missing_file(tmp_path):
    with pytest.raises(FarlInputError) as info:
        load_dataset(tmp_path / "nope.npz")
    assert_one_line(info.value, tmp_path / "nope.npz", "not found")


def test_truncated_file(tmp_path):
    path = save_dataset(tmp_path / "d.npz", make_dataset(n=200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FarlInputError) as info:
        load_dataset(path)
    assert_one_line(info.value, path, "corrupt or truncated")


def test_garbage_file(tmp_path):
    path = tmp_path / "d.npz"
    path.write_bytes(b"this is not a zip file at all")
    with pytest.raises(FarlInputError) as info:
        load_dataset(path)
    assert_one_line(info.value, path, "corrupt or truncated")


def _rewrite(path, meta_edit=None, array_edit=None):
    with np.load(path) as npz:
        contents = {k: npz[k] for k in npz.files}
    meta = json.loads(str(contents["meta_json"]))
    if meta_edit:
        meta_edit(meta)
    if array_edit:
        array_edit(contents)
    contents["meta_json"] = np.array(json.dumps(meta))
    with open(path, "wb") as stream:
        np.savez(stream, **contents)


def test_wrong_version(tmp_path):
    path = save_dataset(tmp_path / "d.npz", make_dataset())
    _rewrite(path, meta_edit=lambda m: m.update(format_version=99))
    with pytest.raises(FarlInputError) as info:
        load_dataset(path)
    assert_one_line(info.value, path, "format_version 99")


def test_wrong_task(tmp_path):
    path = save_dataset(tmp_path / "d.npz", make_dataset(task="bounded_soccer"))
    with pytest.raises(FarlInputError) as info:
        load_dataset(path, expect_task="bounded_push")
    assert_one_line(info.value, path, "'bounded_soccer', expected 'bounded_push'")


def test_checksum_mismatch(tmp_path):
    path = save_dataset(tmp_path / "d.npz", make_dataset())
    _rewrite(path, array_edit=lambda c: c["reward"].__setitem__(0, 123.0))
    with pytest.raises(FarlInputError) as info:
        load_dataset(path)
    assert_one_line(info.value, path, "'reward' does not match its sha256")


def test_not_a_dataset(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, obs=np.zeros((2, 39)))
    with pytest.raises(FarlInputError) as info:
        load_dataset(path)
    assert_one_line(info.value, path, "not a FARL dataset")


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    path = save_dataset(tmp_path / "d.npz", make_dataset(kind=KIND_FAILURE))
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError):
        save_dataset(path, make_dataset(seed=3))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]
    assert zipfile.is_zipfile(path)
