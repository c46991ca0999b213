"""What a run logs as parameters: a config section less the fields that do not apply to it."""

from __future__ import annotations

# Dataset fields that only some datasets read; every other field applies to every dataset.
REAL_DATASET_FIELDS = ("root", "table", "image_size", "jpeg_quality")
ATTRIBUTE_FIELDS = ("class_attribute", "bias_attribute")  # CelebA and CelebA-HQ
FOLDER_FIELDS = ("metadata", "class_names", "bias_names")
SOME_DATASETS_ONLY = ("shapes", "fashion_mnist", *REAL_DATASET_FIELDS, *ATTRIBUTE_FIELDS, *FOLDER_FIELDS)


def fields_read_by(dataset_name: str) -> set[str]:
    """Of ``SOME_DATASETS_ONLY``, the fields dataset ``dataset_name`` reads."""
    if dataset_name == "shapes":
        return {"shapes"}
    if dataset_name == "fashion_mnist":  # its images are tinted and stored at 32² by its own rule
        return {"fashion_mnist", "root"}
    fields = set(REAL_DATASET_FIELDS)
    if dataset_name in ("celeba", "celebahq"):
        fields.update(ATTRIBUTE_FIELDS)
    if dataset_name == "folder":
        fields.update(FOLDER_FIELDS)
    return fields


def dataset_params(dataset, mode: str = "python") -> dict:
    """The dataset section (a ``DatasetConfig``) as a dict, without the fields its dataset does
    not read that are still at their defaults (CelebA's attributes on ``shapes``, the procedural
    world on a real dataset): every field that was set is kept."""
    fields = type(dataset).model_fields
    read = fields_read_by(dataset.name)
    unused = {
        name for name in SOME_DATASETS_ONLY
        if name not in read and getattr(dataset, name) == fields[name].get_default(call_default_factory=True)
    }
    return dataset.model_dump(mode=mode, exclude=unused)
