"""Where a Ray run reads and writes: local paths, or any filesystem pyarrow understands.

An input or `--out` given as a URI (`s3://bucket/scans`, `gs://…`, `abfs://…`, `hdfs://…`;
query options such as `?endpoint_override=host:port` go to pyarrow) is read and written through
`pyarrow.fs`, which takes its credentials from the environment of each node. A `file://` URI is a
local path, and local paths need nothing else installed.

The per-item code reads and writes local files, so a remote input is fetched into a scratch
folder for its batch, and each process stages what it writes in a scratch folder of its own and
uploads it when its batch is done: the outputs first, the batch's part (the record that it is
done) last. An object store shows an object only once it is complete, so nobody reads half a
file, and a process lost before its part is uploaded leaves its batch to be done again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pyarrow as pa
import pyarrow.fs as pafs

from scancap.batch import first_line
from scancap.io import StrPath, is_listed_in_folder
from scancap.pages import PDF_SUFFIX, TIFF_SUFFIXES, Page, page_frames, pages_of

CHUNK = 1 << 20
FETCH_THREADS = 8  # listing an object store waits on the network, not the CPU


class StorageError(OSError):
    """A URI that names no filesystem pyarrow can open, or a transfer that failed."""


def is_remote(location: StrPath) -> bool:
    """Whether `location` is a URI of a filesystem other than the local one."""
    text = str(location)
    return "://" in text and urlsplit(text).scheme != "file"


def local_path(location: StrPath) -> Path:
    """A local path, from a path or a `file://` URI."""
    text = str(location)
    return Path(url2pathname(urlsplit(text).path)) if text.startswith("file://") else Path(text)


def shown(location: StrPath, relative: str = "") -> str:
    """`relative` under `location` as a user names it: a path, or a URI without its options."""
    if not is_remote(location):
        return str(local_path(location) / relative)
    parts = urlsplit(str(location))
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}" + (
        f"/{relative}" if relative else ""
    )


@functools.cache
def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for `uri` and the path `uri` names in it (opened once a process)."""
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise StorageError(f"{shown(uri)}: {first_line(str(error))}") from error
    return fs, path.rstrip("/") or path


@dataclass(frozen=True)
class RemoteFile:
    """An input file on a remote filesystem: the input URI it was listed under (whose
    filesystem reads it) and its path in that filesystem."""

    uri: str
    path: str

    def link(self) -> str:
        """A URI of the file itself, for the report (no options: they may hold secrets)."""
        parts = urlsplit(self.uri)
        if self.path.startswith("/"):  # hdfs://host:port/path: the path is the host's
            return f"{parts.scheme}://{parts.netloc}{self.path}"
        return f"{parts.scheme}://{self.path}"  # s3://bucket/key: the bucket is in the path

    def read_into(self, target: Path) -> str:
        """Copy the file to `target`, returning its SHA-256."""
        fs, _ = filesystem(self.uri)
        digest = hashlib.sha256()
        with fs.open_input_stream(self.path) as source, target.open("wb") as sink:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                sink.write(chunk)
        return digest.hexdigest()


def list_remote_pages(
    uri: str, dpi: int, out: OutputTree | None = None
) -> list[tuple[Page, RemoteFile, str]]:
    """The pages under the input `uri` (not under `out`), each with its file and the file's
    SHA-256 ("" where it cannot be read: processing it then says why).

    Every file is read once, on threads, as the local engine reads each input once to hash it;
    a PDF or TIFF is also opened to count its pages.
    """
    files = _list_remote_files(uri)
    if out is not None:
        files = [(path, relative) for path, relative in files if not out.holds(uri, path)]
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        keyed = pool.map(lambda file: _digest_and_frames(RemoteFile(uri, file[0])), files)
        return [
            (page, RemoteFile(uri, path), digest)
            for (path, relative), (digest, frames) in zip(files, keyed, strict=True)
            for page in pages_of(Path(path), relative.as_posix(), frames, dpi)
        ]


def _list_remote_files(uri: str) -> list[tuple[str, PurePosixPath]]:
    """(path, relative path) of each input file under `uri`, as a local folder is searched."""
    fs, root = filesystem(uri)
    try:
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"input path does not exist: {shown(uri)}")
        if info.type == pafs.FileType.File:
            return [(root, PurePosixPath(PurePosixPath(root).name))]
        found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except (pa.ArrowException, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise StorageError(f"{shown(uri)}: cannot list it ({first_line(str(error))})") from error
    files = [
        (item.path, relative)
        for item in found
        if item.type == pafs.FileType.File
        and is_listed_in_folder(relative := PurePosixPath(item.path).relative_to(root))
    ]
    return sorted(files, key=lambda file: file[1].parts)


def _digest_and_frames(remote: RemoteFile) -> tuple[str, list[int] | None]:
    """The file's SHA-256 and, for a PDF or TIFF, its pages' frames (`page_frames`)."""
    suffix = PurePosixPath(remote.path).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="scancap-") as scratch:
        copy = Path(scratch) / f"file{suffix}"
        try:
            digest = remote.read_into(copy)
        except (pa.ArrowException, OSError):
            return "", None
        multipage = suffix == PDF_SUFFIX or suffix in TIFF_SUFFIXES
        return digest, page_frames(copy) if multipage else None


@contextlib.contextmanager
def fetched(files: list[RemoteFile]) -> Iterator[dict[RemoteFile, Path | str]]:
    """Local copies of `files` for the time of one batch: a path each, or the reason it
    could not be read."""
    with tempfile.TemporaryDirectory(prefix="scancap-inputs-") as scratch:
        copies: dict[RemoteFile, Path | str] = {}
        for number, remote in enumerate(dict.fromkeys(files)):
            target = Path(scratch) / f"{number}{PurePosixPath(remote.path).suffix}"
            try:
                remote.read_into(target)
                copies[remote] = target
            except (pa.ArrowException, OSError) as error:
                copies[remote] = f"could not read it ({first_line(str(error))})"
        yield copies


class OutputTree:
    """`--out` as a run sees it: `staging`, the local folder the stages write into, and the
    filesystem where finished files end up. For a local folder the two are the same; for a URI,
    `publish` uploads what was staged and removes it locally."""

    def __init__(self, out: StrPath) -> None:
        self.location = str(out)
        self.remote = is_remote(out)
        if self.remote:
            self.fs, self.root = filesystem(self.location)
            self.staging = Path(tempfile.mkdtemp(prefix="scancap-out-"))
        else:
            self.staging = local_path(out)
            self.fs, self.root = pafs.LocalFileSystem(), str(self.staging.resolve())

    def path(self, relative: str) -> str:
        """`relative` (a POSIX path under OUT) in the filesystem."""
        return f"{self.root}/{relative}" if relative else self.root

    def display(self, relative: str = "") -> str:
        """`relative` under OUT as a user names it: a local path or a URI."""
        return shown(self.location, relative)

    def holds(self, uri: str, path: str) -> bool:
        """Whether the input file `path` of input `uri` lies under OUT (outputs are not inputs)."""
        fs, _ = filesystem(uri)
        return fs.equals(self.fs) and path.startswith(self.root + "/")

    def pull(self, relative: str) -> None:
        """Copy the file `relative` of a remote OUT into the staging folder, if it exists."""
        if not self.remote:
            return
        with self._speaking():
            if self.fs.get_file_info(self.path(relative)).type != pafs.FileType.File:
                return
        target = self.staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(self.fs, self.path(relative), pafs.LocalFileSystem(), str(target))

    def publish(self, last: str | None = None) -> None:
        """Upload every staged file, those under `last` after all others, and remove them
        locally (nothing to do for a local OUT)."""
        if not self.remote:
            return
        staged = sorted(
            (path for path in self.staging.rglob("*") if path.is_file()),
            key=lambda path: (last is not None and path.is_relative_to(self.staging / last),
                              str(path)),
        )  # fmt: skip
        for path in staged:
            relative = path.relative_to(self.staging).as_posix()
            _copy(pafs.LocalFileSystem(), str(path), self.fs, self.path(relative))
            path.unlink()

    def delete_folder(self, relative: str) -> None:
        """Remove the folder `relative` under OUT, if it exists."""
        with self._speaking():
            if self.fs.get_file_info(self.path(relative)).type == pafs.FileType.Directory:
                self.fs.delete_dir(self.path(relative))

    def folders(self, relative: str) -> list[str]:
        """Names of the folders directly under `relative`."""
        return [
            PurePosixPath(path).name for path in self._entries(relative, pafs.FileType.Directory)
        ]

    def files(self, relative: str, suffix: str) -> list[str]:
        """Paths (in the filesystem) of the files directly under `relative` ending in `suffix`."""
        return [
            path for path in self._entries(relative, pafs.FileType.File) if path.endswith(suffix)
        ]

    def _entries(self, relative: str, kind: pafs.FileType) -> list[str]:
        """Sorted paths of the entries of one kind directly under `relative`."""
        selector = pafs.FileSelector(self.path(relative), allow_not_found=True)
        with self._speaking():
            infos = self.fs.get_file_info(selector)
        return sorted(info.path for info in infos if info.type == kind)

    @contextlib.contextmanager
    def _speaking(self) -> Iterator[None]:
        """The filesystem's errors as StorageError, naming OUT as the user gave it."""
        try:
            yield
        except (pa.ArrowException, OSError) as error:
            raise StorageError(f"{self.display()}: {first_line(str(error))}") from error

    def close(self) -> None:
        """Remove a remote OUT's staging folder."""
        if self.remote:
            shutil.rmtree(self.staging, ignore_errors=True)


def _copy(source_fs: pafs.FileSystem, source: str, target_fs: pafs.FileSystem, target: str) -> None:
    """One file from one filesystem to another; StorageError names the target."""
    try:
        pafs.copy_files(source, target, source_filesystem=source_fs,
                        destination_filesystem=target_fs)  # fmt: skip
    except (pa.ArrowException, OSError) as error:
        raise StorageError(f"{target}: cannot copy it there ({first_line(str(error))})") from error
