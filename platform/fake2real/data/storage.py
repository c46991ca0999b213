"""Where tables and results live: a local folder or a URI, through pyarrow filesystems.

``Location("outputs")`` is an absolute local path; ``Location("s3://bucket/run")`` (also ``gs://``
and any scheme pyarrow knows) stays a clean URI, and ``file://…`` becomes the local path it names.
Endpoints and credentials come from the environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``GOOGLE_APPLICATION_CREDENTIALS``, …), never from query strings, so locations join with ``/``
and mean the same on every node.

Writes are whole or absent: on a local disk a file is written beside its target and renamed; on
an object store one object is uploaded and appears only when its upload completes.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from fake2real.errors import DataError

TMP_PREFIX = ".tmp-"

# "s3:/bucket/key": what pathlib makes of a URI (Path("s3://b/k") == Path("s3:/b/k")).
_MANGLED_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/(?!/)")

# scheme -> filesystem, for stores pyarrow cannot build from a URI (in-memory, fsspec wrappers).
_REGISTERED: dict[str, pafs.FileSystem] = {}


def register_filesystem(scheme: str, filesystem: pafs.FileSystem | None) -> None:
    """Resolve ``scheme://path`` to ``(filesystem, path)``; ``None`` removes the scheme again."""
    if filesystem is None:
        _REGISTERED.pop(scheme.lower(), None)
    else:
        _REGISTERED[scheme.lower()] = filesystem


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def filesystem(where: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path)`` for a local path or a URI (s3://, gs://, file://, a registered scheme)."""
    text = os.fspath(where) if isinstance(where, os.PathLike) else str(where)
    if "://" not in text:
        return pafs.LocalFileSystem(), str(Path(text).absolute())
    scheme, rest = text.split("://", 1)
    if scheme.lower() in _REGISTERED:
        return _REGISTERED[scheme.lower()], rest.rstrip("/")
    try:
        return pafs.FileSystem.from_uri(text)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{text}: cannot open this location: {_first_line(exc)}") from None


class Location(os.PathLike):
    """A folder or file, local or in an object store: ``/`` joins, ``str()`` is its path or URI.

    ``Path(location)`` works for local locations and raises ``TypeError`` for URIs (a ``Path``
    would silently turn ``s3://b/k`` into ``s3:/b/k``).
    """

    __slots__ = ("uri",)

    def __init__(self, where: str | os.PathLike):
        if isinstance(where, Location):
            self.uri: str = where.uri
            return
        text = os.fspath(where) if isinstance(where, os.PathLike) else str(where)
        if "://" in text:
            scheme, rest = text.split("://", 1)
            if "?" in rest or "#" in rest:
                raise DataError(f"{text}: no query strings in output URIs; set the endpoint in the environment (e.g. AWS_ENDPOINT_URL)")
            if scheme.lower() != "file":
                self.uri = f"{scheme.lower()}://{rest.rstrip('/')}"
                return
            text = rest
        elif _MANGLED_URI.match(text):
            raise DataError(f"{text}: a URI that went through pathlib.Path (one slash after the scheme); pass URIs as strings")
        self.uri = str(Path(text).absolute())

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    def __truediv__(self, name: str) -> "Location":
        if self.is_local:
            return Location(Path(self.uri) / name)
        return Location(f"{self.uri}/{str(name).strip('/')}")

    @property
    def name(self) -> str:
        return Path(self.uri).name if self.is_local else self.uri.split("://", 1)[1].rsplit("/", 1)[-1]

    @property
    def parent(self) -> "Location":
        if self.is_local:
            return Location(Path(self.uri).parent)
        scheme, rest = self.uri.split("://", 1)
        return Location(f"{scheme}://{rest.rsplit('/', 1)[0]}") if "/" in rest else self

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        return filesystem(self.uri)

    def __fspath__(self) -> str:
        if not self.is_local:
            raise TypeError(f"{self.uri} is not a local path")
        return self.uri

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, (str, os.PathLike)):
            return NotImplemented
        try:
            return Location(other).uri == self.uri
        except DataError:
            return False

    def __hash__(self) -> int:
        return hash(self.uri)

    def __getstate__(self):
        return self.uri

    def __setstate__(self, uri: str) -> None:
        self.uri = uri


def relative_to(location: str, root: str | os.PathLike) -> str | None:
    """``location`` (a path or URI as ``Location`` writes it) relative to ``root`` when it lies
    inside it, else None: how a workspace names its own files wherever it is (a moved folder, a
    copy, another checkout)."""
    prefix = str(Location(root)).rstrip("/") + "/"
    return location[len(prefix):] if isinstance(location, str) and location.startswith(prefix) else None


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def is_file(location: str | os.PathLike) -> bool:
    fs, path = Location(location).filesystem()
    return fs.get_file_info(path).type == pafs.FileType.File


def list_names(folder: str | os.PathLike, prefix: str = "", suffix: str = "") -> list[str]:
    """Names of the files directly in ``folder`` (none when it is absent), sorted."""
    fs, path = Location(folder).filesystem()
    found = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))
    names = (info.base_name for info in found if info.type == pafs.FileType.File)
    return sorted(n for n in names if n.startswith(prefix) and n.endswith(suffix))


def delete_file(location: str | os.PathLike) -> None:
    fs, path = Location(location).filesystem()
    fs.delete_file(path)


def put_bytes(location: str | os.PathLike, data: bytes | pa.Buffer) -> Location:
    """Write one file whole: a local file is renamed into place, an object appears on completion."""
    target = Location(location)
    fs, path = target.filesystem()
    if target.is_local:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(path).parent / f"{TMP_PREFIX}{Path(path).name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with open(temporary, "wb") as out:
                out.write(memoryview(data))
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return target
    # The data is complete before the stream opens: an upload either completes whole or never
    # appears (an exception mid-serialisation must not close a stream on half an object).
    try:
        stream = fs.open_output_stream(path)
    except FileNotFoundError:  # stores with real folders (not S3/GCS) need the parent first
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        stream = fs.open_output_stream(path)
    with stream:
        stream.write(data)
    return target


def get_bytes(location: str | os.PathLike) -> bytes:
    fs, path = Location(location).filesystem()
    with fs.open_input_stream(path) as stream:
        return stream.read()


def upload(local_file: str | os.PathLike, location: str | os.PathLike) -> Location:
    """Copy a local file to ``location`` (any filesystem), whole or absent."""
    return put_bytes(location, Path(local_file).read_bytes())


def path_in(location: str | os.PathLike, name: str) -> str:
    """The filesystem path of ``name`` inside ``location`` (for pyarrow calls taking a filesystem)."""
    _, root = Location(location).filesystem()
    return _join(root, name)


@contextmanager
def local_folder(location: str | os.PathLike):
    """A local path of the folder at ``location``: itself when local, else a temporary copy (removed after)."""
    location = Location(location)
    if location.is_local:
        yield Path(location)
        return
    fs, path = location.filesystem()
    with tempfile.TemporaryDirectory(prefix="fake2real-copy-") as directory:
        pafs.copy_files(path, directory, source_filesystem=fs)
        yield Path(directory)
