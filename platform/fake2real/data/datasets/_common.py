"""What the native-layout readers share: reading text files through pyarrow filesystems."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs

from fake2real.errors import DataError


def read_text(fs: pafs.FileSystem, path: str) -> str:
    """An annotation file's text (UTF-8; a leading byte-order mark, as spreadsheets save it, is dropped)."""
    try:
        with fs.open_input_stream(path) as stream:
            data = stream.read()
    except FileNotFoundError:
        raise DataError(f"missing metadata file {path}") from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        byte = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        raise DataError(f"{path} is not UTF-8 text ({byte}): is it the annotation file?") from None


def check_value(value, allowed: tuple[str, ...], what: str, where: str) -> str:
    """``value`` when it is one of ``allowed``, else one line: ``<where>: <what> must be 0 or 1, got '2'``."""
    if value not in allowed:
        choices = " or ".join(allowed) if len(allowed) == 2 else ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        raise DataError(f"{where}: {what} must be {choices}, got {value!r}")
    return value


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def list_files(fs: pafs.FileSystem, folder: str, suffixes=IMAGE_SUFFIXES) -> list[str]:
    info = fs.get_file_info(folder)
    if info.type != pafs.FileType.Directory:
        raise DataError(f"missing image folder {folder}")
    found = fs.get_file_info(pafs.FileSelector(folder, recursive=False))
    return sorted(f.path for f in found if f.type == pafs.FileType.File and f.path.lower().endswith(suffixes))


def numbered_lines(text: str) -> list[tuple[int, list[str]]]:
    """The non-blank lines of ``text`` split on whitespace, each with its line number (1-based, as an editor shows it)."""
    return [(number, line.split()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def attribute_table(text: str, path: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """CelebA-style annotations: a count line, a line of attribute names, then ``file v1 v2 …``;
    the rows come with their line numbers."""
    lines = numbered_lines(text)
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and an attribute-name line")
    names = lines[1][1]
    rows = lines[2:]
    for number, row in rows:
        if len(row) != len(names) + 1:
            raise DataError(f"{path}: line {number}: row for {row[0]} has {len(row) - 1} values for {len(names)} attributes")
    return names, rows


def attribute_flag(row: list[str], index: int, name: str, where: str) -> int:
    """Attribute ``index`` (``name``) of a row as 1 (present, ``1``) or 0 (absent, ``-1``)."""
    return int(check_value(row[1 + index], ("1", "-1"), name, where) == "1")


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
