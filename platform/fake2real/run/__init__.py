"""Running (layer 6): one experiment (``experiment``), a cell's search (planned in ``search_plan``,
run on Tune by ``search``), a sweep's cells (``sweep_plan``, ``sweep``), the checks a job makes
once before any work (``checks``) and what the cluster holds at once (``capacity``)."""
