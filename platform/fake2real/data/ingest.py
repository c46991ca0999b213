"""Real datasets from their native layouts into the image-table contract, in parallel on Ray Data.

The reader (a ``NativeDataset``, ``data/datasets/base.py``) lists images with (y, b, split) and declares each class's
majority bias (``MAJORITY_BIAS``, overridable by ``dataset.majority_bias``); here the listing is
checked (every listed image exists, no group empty after subsampling) *before* any Ray work,
subsampled by the reference's rule (``data/groups.py``), then decoded by Ray Data tasks and
stored as they are when already ``image_size``² JPEG/PNG, else resized and JPEG-encoded
(``images.store_image``), and written as whole parts into the table's folder (local or a URI);
``table.json`` comes last. A corrupt or truncated image is fatal: the error names the file (a
silently smaller group would change the bias ratio being studied).
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from fake2real.data.groups import apply_bias_ratio, check_splits
from fake2real.data.images import store_image
from fake2real.data.metadata import check_present
from fake2real.data.sources import record, stamps
from fake2real.data.storage import filesystem
from fake2real.data.table import (
    REAL, TableInfo, check_writable, clear_debris, count_groups, finalize, group_name, is_complete, to_contract, write_part,
)
from fake2real.errors import ConfigError, DataError


def _resolve(value, names: list[str], kind: str, where: str) -> int:
    """A class or bias given by name (as ``names(config)`` spells it) or by integer index."""
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return value
    if isinstance(value, str) and value.isdigit() and int(value) < len(names):
        return int(value)
    raise ConfigError(f"config: dataset.majority_bias: unknown {kind} {value!r}{where} (known: {', '.join(names)})")


def majority_map(config, reader) -> dict[int, int]:
    """Class index → its majority bias index: ``dataset.majority_bias`` if set, else the reader's
    ``MAJORITY_BIAS`` (the reference's choice). Every class needs one, and no two classes may share
    one (the bias would vanish: the "most frequent bias" of CelebA's classes is the same). A dataset
    without a reference map (``folder``) needs ``dataset.majority_bias`` to subsample; without a
    ``bias_ratio`` nothing is subsampled and the map is empty."""
    class_names, bias_names = reader.names(config)
    class_names, bias_names = list(class_names), list(bias_names)
    given = config.majority_bias
    if given is None:
        attributes = reader.MAJORITY_BIAS_ATTRIBUTES
        chosen = (getattr(config, "class_attribute", None), getattr(config, "bias_attribute", None))
        if attributes is not None and chosen != attributes:
            raise ConfigError(
                f"config: dataset.majority_bias is required for class_attribute={chosen[0]}, bias_attribute={chosen[1]} "
                f"(the default map is the reference's for {attributes[0]}/{attributes[1]}), e.g. "
                f"{{{class_names[0]}: {bias_names[1]}, {class_names[1]}: {bias_names[0]}}}"
            )
        given = reader.MAJORITY_BIAS
        if not given:
            if config.bias_ratio is None:
                return {}
            example = ", ".join(f"{name}: {bias_names[i % len(bias_names)]}" for i, name in enumerate(class_names))
            raise ConfigError(
                f"config: dataset.majority_bias is required for dataset '{config.name}' with a bias_ratio "
                f"(it has no reference map), e.g. {{{example}}}; or set dataset.bias_ratio: null to keep the data as distributed"
            )
    mapping: dict[int, int] = {}
    for key, value in given.items():
        cls = _resolve(key, class_names, "class", "")
        if cls in mapping:
            raise ConfigError(f"config: dataset.majority_bias: class '{class_names[cls]}' is given twice")
        mapping[cls] = _resolve(value, bias_names, "bias", f" for class '{class_names[cls]}'")
    missing = [name for i, name in enumerate(class_names) if i not in mapping]
    if missing:
        raise ConfigError(f"config: dataset.majority_bias: class '{missing[0]}' has no majority bias (every class needs one)")
    owner: dict[int, int] = {}
    for cls in sorted(mapping):
        bias = mapping[cls]
        if bias in owner:
            raise ConfigError(
                f"config: dataset.majority_bias: classes '{class_names[owner[bias]]}' and '{class_names[cls]}' "
                f"share the majority bias '{bias_names[bias]}' (each class needs its own)"
            )
        owner[bias] = cls
    return mapping


def listing(config, reader) -> pa.Table:
    """The reader's rows after the checks and the bias-ratio rule; raises on bad input."""
    base_ratio = reader.REFERENCE_BASE_RATIO
    if config.bias_ratio is not None and base_ratio is not None and config.bias_ratio < base_ratio:
        # The reference's base step already imposes base_ratio: a lower ratio would be mislabelled.
        raise ConfigError(
            f"config: dataset.bias_ratio: {config.bias_ratio} is below {base_ratio}, the ratio the reference's "
            f"protocol for {config.name} starts from (use {base_ratio} or higher, or null for the data as distributed)"
        )
    try:
        fs, root = filesystem(config.root)
    except DataError as exc:
        raise DataError(f"dataset.root: {exc}") from None
    if fs.get_file_info(root).type != pafs.FileType.Directory:
        raise DataError(f"dataset.root: no folder at {config.root}")
    rows = reader.list_images(config, fs, root)  # checks the attribute names the map depends on
    majority = majority_map(config, reader)
    if rows.num_rows == 0:
        raise DataError(f"dataset.root: no {config.name} images found under {config.root}")
    check_present(fs, rows["path"].to_pylist())

    y, b, ids = rows["y"].to_numpy(), rows["b"].to_numpy(), rows["id"].to_numpy(zero_copy_only=False)
    split = np.asarray(rows["split"].to_pylist())
    if config.bias_ratio is not None:
        # The majority bias is the dataset's (or the config's), never a class's most frequent one.
        keep = apply_bias_ratio(
            y, b, ids, split, majority, config.bias_ratio, config.val_floor, config.split_seed,
            base_ratio=base_ratio,
        )
        rows = rows.filter(pa.array(keep))
    groups = sorted({group_name(int(yy), int(bb)) for yy, bb in zip(y, b)})
    check_splits(count_groups(rows), groups, config.name, config.bias_ratio)
    return rows


def _decode_batch(batch: pa.Table, root: str, size: int, quality: int) -> pa.Table:
    fs, _ = filesystem(root)
    images = []
    for path in batch["path"].to_pylist():
        with fs.open_input_stream(path) as stream:
            images.append(store_image(stream.read(), size, quality, path))
    return batch.drop_columns(["path"]).append_column("image", pa.array(images, pa.binary()))


def write_on_ray(rows: pa.Table, path: str | os.PathLike, store_batch: Callable, fn_kwargs: dict, info: TableInfo,
                 sources: pa.Table | None = None) -> TableInfo:
    """The table at ``path`` from ``rows`` (every contract column but ``image``, plus ``path``):
    ``store_batch`` turns a batch's ``path`` into ``image`` in Ray Data tasks, each result is a
    part, ``table.json`` (``info``) comes last; an unfinished write is cleared on failure.
    ``sources``: the files' stamps (``sources.stamps``, taken before they are read), recorded with it."""
    import ray

    from fake2real.runtime import init_ray

    table = check_writable(path)
    if is_complete(table):
        raise DataError(f"table {table} already exists")
    clear_debris(table)  # an earlier run's unfinished parts
    if sources is not None:
        record(table, sources, info)
    init_ray()
    try:
        block = max(1, min(256, -(-rows.num_rows // 32)))
        blocks = [rows.slice(start, block) for start in range(0, rows.num_rows, block)]
        dataset = ray.data.from_arrow(blocks).map_batches(store_batch, fn_kwargs=fn_kwargs, batch_size=None, batch_format="pyarrow")
        for part in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            write_part(table, to_contract(part))
        info.num_rows = rows.num_rows
        info.group_counts = count_groups(rows)
        finalize(table, info)
        return info
    except BaseException:
        try:  # best effort: a later run clears what is left anyway
            if not is_complete(table):
                clear_debris(table)
        except Exception:
            pass
        raise


def build_native_table(config, reader, path: str | os.PathLike) -> TableInfo:
    """Ingest the dataset at ``config.root`` into the table at ``path`` (a local folder or a URI)."""
    rows = listing(config, reader)  # every check that can fail does so before Ray starts
    rows = rows.append_column("g", pa.array([REAL] * rows.num_rows, pa.int64()))
    class_names, bias_names = reader.names(config)
    info = TableInfo(config.name, class_names, bias_names, "real", extra={"root": config.root, "image_size": config.image_size})
    fn_kwargs = {"root": config.root, "size": config.image_size, "quality": config.jpeg_quality}
    sources = None
    if reader.records_sources:  # the user's own files, edited in place: the next run checks them
        fs, base = filesystem(config.root)
        sources = stamps(fs, base, [p[len(base) + 1:] for p in rows["path"].to_pylist()])
    return write_on_ray(rows, path, _decode_batch, fn_kwargs, info, sources)


def count_table(info: TableInfo) -> str:
    """Group counts per split, as printed by the ingest job."""
    groups = sorted({g for counts in info.group_counts.values() for g in counts})
    lines = ["| split | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for split in ("train", "val", "test"):
        counts = info.group_counts.get(split, {})
        lines.append(f"| {split} | " + " | ".join(str(counts.get(g, 0)) for g in groups) + " |")
    return "\n".join(lines)

