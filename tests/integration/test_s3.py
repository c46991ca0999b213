"""``output_dir`` in an object store: a local S3 (moto) reached through the standard environment
variables only, as a user's jobs reach theirs. Tables, generation and a training run land in the
bucket; each is read back through the same URIs and compared with the local equivalent."""

from __future__ import annotations

import re

import native_fixtures as fixtures
from fake2real.config import build_config
from fake2real.data.storage import Location, upload
from fake2real.data.table import METADATA_FILE, is_complete, part_names, read_info, read_table
from fake2real.presets import preset
from fake2real.entrypoints import generate_job
from fake2real.prepare.workspace import Workspace, prepare_real
from helpers import run_job

CELEBA = {"name": "celeba", "image_size": 16, "bias_ratio": 0.9}


def table_keys(s3_server, uri: str) -> list[str]:
    """The objects under a table's folder (no folder markers), relative to it."""
    bucket, prefix = uri.removeprefix("s3://").split("/", 1)
    return [k[len(prefix) + 1:] for k in s3_server.keys(bucket, prefix + "/") if not k.endswith("/")]


def test_ingest_into_s3_gives_the_local_table(ray_connected, ray_head, s3_server, s3_bucket, tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    remote = f"{s3_bucket}/run"
    completed = run_job(
        "ingest.py", f"output_dir={remote}", "dataset.name=celeba", f"dataset.root={root}", "dataset.bias_ratio=0.9",
        "dataset.image_size=16", env=ray_head.env, timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    config = build_config(overrides={"output_dir": remote, "dataset": {**CELEBA, "root": str(root)}})
    table = f"{remote}/data/real-celeba-{config.digest('dataset')}"
    assert f"real table: {table} (" in completed.stdout
    assert is_complete(table)
    # In the bucket: the parts table.json lists and table.json, nothing else (no probe, no temporary).
    assert sorted(table_keys(s3_server, table)) == sorted(part_names(table) + [METADATA_FILE])

    local_config = build_config(overrides={"output_dir": str(tmp_path / "local"), "dataset": {**CELEBA, "root": str(root)}})
    local = prepare_real(local_config, Workspace.create(local_config))
    assert read_info(table).group_counts == read_info(local).group_counts
    assert read_table(table).equals(read_table(local))
    assert read_table(table, split="val", columns=["id", "y"]).equals(read_table(local, split="val", columns=["id", "y"]))

    # Run again: the finished table is reused, not rewritten.
    again = run_job("ingest.py", f"output_dir={remote}", "dataset.name=celeba", f"dataset.root={root}",
                    "dataset.bias_ratio=0.9", "dataset.image_size=16", env=ray_head.env, timeout=240)
    assert again.returncode == 0 and "[data] writing" not in again.stdout, again.stderr[-3000:]


def test_generation_into_s3_resumes_a_partial_folder(ray_connected, ray_head, s3_server, s3_bucket, tmp_path):
    # The reference: the same plan generated locally, uninterrupted.
    generate_job(build_config(overrides={"output_dir": str(tmp_path / "local")}, base=preset("smoke")))
    reference = next((tmp_path / "local" / "data").glob("pool-shapes-*"))
    remote = f"{s3_bucket}/run"
    folder = Location(remote) / "data" / reference.name
    # A killed run's folder: the plan and some of the parts, no table.json.
    parts = part_names(reference)
    upload(reference / "plan" / "plan.parquet", folder / "plan" / "plan.parquet")
    for name in parts[: len(parts) // 2]:
        upload(reference / name, folder / name)

    completed = run_job("generate.py", "--preset", "smoke", f"output_dir={remote}", env=ray_head.env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    made = re.search(r"\[generate\] \S+: (\d+) images held, (\d+) to make", completed.stdout)
    assert made and int(made[1]) > 0 and int(made[2]) > 0, completed.stdout[-2000:]
    assert f"synthetic pool: {folder} (" in completed.stdout
    assert is_complete(folder)
    assert read_info(folder).group_counts == read_info(reference).group_counts
    assert read_table(folder).equals(read_table(reference))
    keys = table_keys(s3_server, str(folder))
    assert "plan/plan.parquet" in keys and not [k for k in keys if ".tmp-" in k or "write-probe" in k]


def test_training_reads_and_checkpoints_in_s3(ray_head, s3_server, s3_bucket, tmp_path):
    remote = f"{s3_bucket}/x"
    completed = run_job(
        "train.py", "--preset", "smoke", f"output_dir={remote}", "train.mixture=none", "train.num_workers=1",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", env=ray_head.env, cwd=tmp_path, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    checkpoint = re.search(r"checkpoint: (\S+)", completed.stdout)[1]
    assert checkpoint.startswith(f"{remote}/runs/real-"), completed.stdout[-2000:]
    bucket = s3_bucket.removeprefix("s3://")
    keys = s3_server.keys(bucket, "x/")
    assert [k for k in keys if k.startswith("x/data/real-shapes-") and k.endswith(METADATA_FILE)]
    assert [k for k in keys if k.startswith("x/runs/real-") and k.endswith("stage_result.json")]
    assert [k for k in keys if k.startswith(checkpoint.removeprefix(f"s3://{bucket}/") + "/")]
    # MLflow's artifacts stay on the driver's disk; nothing else is written locally.
    assert {p.name for p in tmp_path.iterdir()} <= {"mlartifacts", "mlflow.db"}


def test_generation_output_and_real_table_as_uris(ray_connected, ray_head, s3_server, s3_bucket, tmp_path):
    # A real table in the bucket (shapes renders itself: no Ray), then generation from it into the bucket.
    real_config = build_config(overrides={"output_dir": f"{s3_bucket}/run"}, base=preset("smoke"))
    real = prepare_real(real_config, Workspace.create(real_config))
    output = f"{s3_bucket}/synthetic/shapes-balanced"
    completed = run_job(
        "generate.py", "--preset", "smoke", f"output_dir={tmp_path / 'work'}", f"generation.real_table={real}",
        f"generation.output={output}", env=ray_head.env, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"synthetic pool: {output} (" in completed.stdout
    assert is_complete(output) and read_info(output).num_rows == read_table(output).num_rows
    assert not (tmp_path / "work" / "data").exists() or not list((tmp_path / "work" / "data").iterdir())
