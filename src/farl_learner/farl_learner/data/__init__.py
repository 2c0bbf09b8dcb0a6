"""Offline data for FARL: the dataset format and sim demo generation (FailureBench).

API:
    Dataset (dataclass: obs, action, reward, cost, done, timeout, kind, episode_id, next_obs, meta)
    save_dataset(path, dataset) -> Path            atomic .npz write (format_version 1, sha256s)
    load_dataset(path, expect_task=None) -> Dataset  FarlInputError (file + problem) on bad files
    concat_datasets([...]) -> Dataset
    KIND_TASK = 0, KIND_RECOVERY = 1, KIND_FAILURE = 2
    generate_task_demos(task, n_demos=None, seed=0) -> Dataset        (20 medium-expert demos)
    generate_recovery_demos(task, n_demos=None, seed=0) -> Dataset    (120 scripted recoveries)
    generate_failure_data(task, policy_fn, n_transitions=None, noise_scale=None, seed=0, ...) -> Dataset
    build_offline_datasets(task, out_dir, seed=0) -> OfflineDatasets  (cached task + recovery demos)
    load_data_config(task) -> DataGenConfig
"""
from .build import OfflineDatasets, build_offline_datasets
from .config import DataGenConfig, load_data_config
from .demos import generate_task_demos
from .failure_data import generate_failure_data
from .format import (FORMAT_VERSION, KIND_FAILURE, KIND_NAMES, KIND_RECOVERY, KIND_TASK, Dataset,
                     concat_datasets, load_dataset, save_dataset)
from .recovery import generate_recovery_demos

__all__ = [
    "FORMAT_VERSION", "KIND_FAILURE", "KIND_NAMES", "KIND_RECOVERY", "KIND_TASK", "DataGenConfig", "Dataset",
    "OfflineDatasets", "build_offline_datasets", "concat_datasets", "generate_failure_data",
    "generate_recovery_demos", "generate_task_demos", "load_data_config", "load_dataset", "save_dataset",
]
