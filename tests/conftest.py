"""What the whole suite shares: a temporary feature cache, results made once per run, the
opt-in experiment marker and the order in which the two workers take the tests.

Results shared between xdist workers live in the run's temporary folder (the parent of each
worker's own) and are made under a file lock by whichever worker asks first; the others wait
for it and then only read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

EXPERIMENTS_ENV = "SCANCAP_RUN_EXPERIMENTS"

# About the seconds each of the heaviest tests (or groups, see GROUPS) takes on a 2-core machine
# under `-n 2`: the collection puts them first, heaviest first, so that the two workers take
# them while there is other work to balance them, and the run ends with short tests instead of
# one worker finishing a long one alone. Names that no longer match are ignored; the other
# tests keep their order.
HEAVY = {
    "test_ray.py::test_a_two_node_cluster_gives_the_local_manifest": 60,
    "test_notebooks.py::test_notebook_runs_in_fast_mode[03_captioning]": 40,
    "test_notebooks.py::test_notebook_runs_in_fast_mode[02_classification]": 32,
    "test_grounding.py::test_train_grounding_cli": 30,
    "test_ray.py::test_inputs_and_outputs_on_an_object_store": 28,
    "test_caption.py::test_training_smoke": 28,
    "test_classify.py::test_training_smoke": 28,
    "test_notebooks.py::test_notebook_runs_in_fast_mode[04_pipeline]": 27,
    "test_notebooks.py::test_notebook_runs_in_fast_mode[05_ocr]": 25,
    "test_report_browser.py::test_the_report_of_a_run": 25,
    "test_pipeline.py::test_a_run_killed_midway": 18,
    "test_pipeline.py::test_service_batches_concurrent_requests": 16,
    "test_notebooks.py::test_notebook_runs_in_fast_mode[01_restoration]": 15,
    "test_adapt.py::test_the_review_file_names_pages": 12,
    "test_ocr.py::test_a_page_whose_reading_fails": 9,
    "test_ocr.py::test_ocr_can_be_turned_off": 7,
    "test_caption.py::test_caption_cli_writes_a_row_per_file": 7,
    "test_pipeline.py::test_run_sorts_restores_captions": 7,
    "test_mil.py::test_out_of_fold_probabilities": 7,
    "test_cli.py::test_tensorflow_start_up_lines": 6,
}


# Tests that run on one worker, one after the other, because they share what a fixture makes
# once (a Ray cluster and a reference run, a browser and a run, a reviewed run, a feature cache
# behind a lock that the other worker would otherwise sit waiting on). pytest-xdist's own
# `xdist_group` marks do not work under pytest 9 (xdist renames items through an attribute that
# pytest no longer reads), so the groups are node-id prefixes here; `--dist loadgroup` uses them.
GROUPS = {
    "tests/engines/test_ray.py::test_a_two_node_cluster_gives_the_local_manifest": "ray",
    "tests/engines/test_ray.py::test_inputs_and_outputs_on_an_object_store": "ray",
    "tests/pipeline/test_report_browser.py::": "browser",
    "tests/classify/test_adapt.py::": "adapt",
    "tests/classify/test_classify.py::test_training_smoke": "doctype-subset",
    "tests/lab/test_loso.py::test_a_fold_never_trains": "doctype-subset",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under `--dist loadgroup`: whichever worker is free takes the next test (or the next
    group, whole) in collection order (heaviest first, see HEAVY)."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((g for prefix, g in GROUPS.items() if nodeid.startswith(prefix)), nodeid)

    return GroupScheduling(config, log)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-experiments",
        action="store_true",
        help=f"also run the tests marked `experiment` (or set {EXPERIMENTS_ENV}=1)",
    )


def _weight(item: pytest.Item) -> float:
    nodeid = item.nodeid.split("/")[-1]
    return max((s for name, s in HEAVY.items() if nodeid.startswith(name)), default=0.0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_experiments = config.getoption("--run-experiments") or os.environ.get(
        EXPERIMENTS_ENV, ""
    ) not in ("", "0")
    if not run_experiments:
        skip = pytest.mark.skip(
            reason=f"an experiment's reproduction: --run-experiments or {EXPERIMENTS_ENV}=1"
        )
        for item in items:
            if "experiment" in item.keywords:
                item.add_marker(skip)
    items.sort(key=_weight, reverse=True)  # stable: the rest keep the collection's order


# --- temporary folders ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's temporary folder, the same for every xdist worker (each worker's own
    temporary folder sits in it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def scancap_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SCANCAP_CACHE, where scancap keeps its feature caches, is a temporary folder of this
    worker for the whole run (inherited by the CLI subprocesses and notebook kernels the tests
    start): a test run writes nothing into ~/.cache or the repository. One per worker, so two
    processes never build the same cache at once; results shared between workers are made
    under a lock (`shared_result`)."""
    folder = tmp_path_factory.mktemp("scancap-cache")
    previous = os.environ.get("SCANCAP_CACHE")
    os.environ["SCANCAP_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("SCANCAP_CACHE", None)
    else:
        os.environ["SCANCAP_CACHE"] = previous


class SharedResult:
    """A folder that one worker fills and the others wait for: `with result as folder:` holds
    the lock; `result.done()` inside it marks the folder filled."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = FileLock(f"{folder}.lock")

    @property
    def ready(self) -> bool:
        return (self.folder / ".done").exists()

    def done(self) -> None:
        (self.folder / ".done").touch()

    def __enter__(self) -> Path:
        self._lock.acquire()
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


@pytest.fixture(scope="session")
def shared_result(shared_tmp: Path):
    """`shared_result(name)`: the SharedResult called `name` in the run's temporary folder."""
    return lambda name: SharedResult(shared_tmp / name)


# --- results made once per run --------------------------------------------------------------------


@pytest.fixture(scope="session")
def doctype_subset_cache(shared_result) -> Path:
    """A feature-cache folder holding the features of the doctype split kept at 3 images per
    label and split (what `train classifier --limit 3` and the leave-one-source-out test train
    on): the backbone runs on those images once per run, whichever test needs them first."""
    from scancap.classify import data as doctype

    result = shared_result("doctype-subset-cache")
    with result as folder:
        if not result.ready:
            split = doctype.limit_split(doctype.make_split(doctype.load_manifest()), 3)
            doctype.build_feature_cache(split, folder, progress=False)
            # and the Flickr8k photos that training adds to the subset (as many: 3)
            extra = doctype.extra_flickr8k_photos(split).head(3)
            doctype.build_feature_cache(extra, folder, progress=False)
            result.done()
    return folder
