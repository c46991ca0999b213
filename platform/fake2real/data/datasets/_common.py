"""What the native-layout readers share: reading text files through pyarrow filesystems."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs

from fake2real.data.storage import filesystem  # noqa: F401  (the readers' entry point: local folder or URI)
from fake2real.errors import DataError


def read_text(fs: pafs.FileSystem, path: str) -> str:
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read().decode()
    except FileNotFoundError:
        raise DataError(f"missing metadata file {path}") from None


def list_files(fs: pafs.FileSystem, folder: str, suffixes=(".jpg", ".jpeg", ".png")) -> list[str]:
    info = fs.get_file_info(folder)
    if info.type != pafs.FileType.Directory:
        raise DataError(f"missing image folder {folder}")
    found = fs.get_file_info(pafs.FileSelector(folder, recursive=False))
    return sorted(f.path for f in found if f.type == pafs.FileType.File and f.path.lower().endswith(suffixes))


def attribute_table(text: str, path: str) -> tuple[list[str], list[list[str]]]:
    """CelebA-style annotations: a count line, a line of attribute names, then ``file v1 v2 …``."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and an attribute-name line")
    names = lines[1]
    rows = lines[2:]
    for row in rows:
        if len(row) != len(names) + 1:
            raise DataError(f"{path}: row for {row[0]} has {len(row) - 1} values for {len(names)} attributes")
    return names, rows


def attribute_index(names: list[str], wanted: str, field: str) -> int:
    if wanted not in names:
        raise DataError(f"dataset.{field}: unknown attribute '{wanted}' (known: {', '.join(names)})")
    return names.index(wanted)


def listing(ids, paths, y, b, split) -> pa.Table:
    return pa.table({"id": ids, "path": paths, "y": pa.array(y, pa.int64()), "b": pa.array(b, pa.int64()), "split": split})


def seeded_split(ids: list[str], seed: int, fractions=(0.8, 0.1, 0.1)) -> list[str]:
    """A stable 80/10/10 split: each id's split depends on (seed, id) only, never on listing order."""
    from fake2real.seeding import stable_seed

    out = []
    for image_id in ids:
        u = (stable_seed("split", seed, image_id) % 1_000_000) / 1_000_000
        out.append("train" if u < fractions[0] else "val" if u < fractions[0] + fractions[1] else "test")
    return out
