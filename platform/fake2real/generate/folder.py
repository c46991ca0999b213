"""``generation.backend: folder``: synthetic images made elsewhere, imported once as a pool
(the listing and the table: ``data/imported.py``). The pool holds what the folder lists: it
cannot grow, and a larger draw is refused."""

from __future__ import annotations

from typing import Optional

from fake2real.data.imported import DIGEST_KEY, build_imported_table, list_imported
from fake2real.data.metadata import metadata_digest
from fake2real.errors import ConfigError
from fake2real.generate.base import ImportBackend
from fake2real.section_base import _Section


class ImportedImages(_Section):
    """``generation.folder``: where the images and their metadata are."""

    root: Optional[str] = None  # local folder or URI
    # Under root, CSV or Parquet: path, class, bias, optional prompt, seed, model; None: metadata.csv, else .parquet.
    metadata: Optional[str] = None


class FolderImport(ImportBackend):
    name = "folder"
    Settings = ImportedImages

    @classmethod
    def check_settings(cls, settings: ImportedImages) -> None:
        if not settings.root:
            raise ValueError("generation.folder.root is required for the folder backend (the folder of your synthetic images)")

    @classmethod
    def identity(cls, folder, dataset) -> dict:
        return {"root": folder.root, "metadata": metadata_digest(folder.root, folder.metadata)}

    @classmethod
    def listed(cls, folder, class_names, bias_names, split=None, identity=None):
        rows = list_imported(folder.root, folder.metadata, class_names, bias_names, split=split)
        if identity is not None and rows.schema.metadata[DIGEST_KEY].decode() != identity["metadata"]:
            raise ConfigError(f"config: generation.folder: the metadata under {folder.root} changed while this job ran; run it again")
        return rows

    @classmethod
    def build(cls, folder, rows, pool_id, location, info, size, quality) -> None:
        build_imported_table(rows, pool_id, size, location, info, quality=quality)

    @classmethod
    def source(cls, folder) -> str:
        return folder.root
