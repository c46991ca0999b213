"""Prompt plans: one row per image of a synthetic pool (group, prompt, seed, id), as an Arrow table.

A plan is data: it can be printed and inspected before anything runs. A pool is identified by
what makes its images (dataset or template, generator and its settings, bias words,
degradation), never by how many: image ``i`` of group (y, b) has the id
``pool_row_id(pool, y, b, i)`` and a seed derived from that id, so a plan for 800 images of a
group starts with the 500 rows of a plan for 500, and a pool grows by generating only the rest.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from fake2real.seeding import stable_seed
from fake2real.data.table import group_name, pool_row_id
from fake2real.errors import ConfigError
from fake2real.identity import key as identity_key

PLAN_SCHEMA = pa.schema([("id", pa.string()), ("y", pa.int64()), ("b", pa.int64()), ("split", pa.string()), ("prompt", pa.string()), ("seed", pa.int64())])


def pool_id(identity: dict, split: str = "train") -> str:
    """A pool's id: what makes its images, and its split (the held-out test pool is another pool)."""
    return identity_key({**identity, **({"split": split} if split != "train" else {})})


def draw_id(pool: str, counts: dict[tuple[int, int], int]) -> str:
    """The id of the first ``counts[g]`` images of each group of ``pool``."""
    return identity_key({"pool": pool, "counts": {group_name(y, b): n for (y, b), n in sorted(counts.items())}})


def drawn_ids(pool: str, counts: dict[tuple[int, int], int]) -> list[str]:
    return [pool_row_id(pool, y, b, i) for (y, b), n in sorted(counts.items()) for i in range(n)]


def build_plan(
    counts: dict[tuple[int, int], int], prompt_fn, identity: dict, split: str = "train", bias_fn=None
) -> tuple[str, pa.Table]:
    """``(pool id, plan)``: the first ``counts[(y, b)]`` images of each group of the pool ``identity``
    (dataset, generator settings …) names, prompts from ``prompt_fn(y, b, seed)``.

    ``bias_fn(y, b, seed)``, when given, is the bias value the generator will actually render
    (prompts without bias words leave it to the generator's prior).
    """
    if not counts:
        raise ConfigError("generation: the plan has no groups")
    for (y, b), n in sorted(counts.items()):
        if n <= 0:
            raise ConfigError(f"generation: images per group must be positive, got {n} for group {group_name(y, b)}")
    pid = pool_id(identity, split)
    rows: dict[str, list] = {name: [] for name in PLAN_SCHEMA.names}
    for (y, b), n in sorted(counts.items()):
        for i in range(n):
            row_id = pool_row_id(pid, y, b, i)
            seed = stable_seed(pid, row_id) % (2**31)
            rows["id"].append(row_id)
            rows["y"].append(y)
            rows["b"].append(bias_fn(y, b, seed) if bias_fn else b)
            rows["split"].append(split)
            rows["prompt"].append(prompt_fn(y, b, seed))
            rows["seed"].append(seed)
    return pid, pa.table(rows, schema=PLAN_SCHEMA)


def describe(plan: pa.Table, samples: int = 3) -> str:
    """Per group: images, how many distinct prompts they get, and the first few, for ``--dry-run`` and logs."""
    lines = []
    for row in plan.group_by(["y", "b"]).aggregate([("id", "count")]).sort_by([("y", "ascending"), ("b", "ascending")]).to_pylist():
        mask = pc.and_(pc.equal(plan["y"], row["y"]), pc.equal(plan["b"], row["b"]))
        distinct = pc.unique(plan.filter(mask).column("prompt")).to_pylist()  # in order of first use
        shown = ", ".join(repr(p) for p in distinct[:samples])
        lines.append(
            f"{group_name(row['y'], row['b'])}: {row['id_count']} images, {len(distinct)} distinct "
            f"prompt{'' if len(distinct) == 1 else 's'}, e.g. {shown}"
        )
    return "\n".join(lines)
