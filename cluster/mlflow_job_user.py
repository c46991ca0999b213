"""Give the jobs an MLflow user of their own: not an admin, allowed to edit one experiment only.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 MLFLOW_TRACKING_USERNAME=admin \
    MLFLOW_TRACKING_PASSWORD="$MLFLOW_ADMIN_PASSWORD" FAKE2REAL_JOB_PASSWORD="$MLFLOW_JOB_PASSWORD" \
    python cluster/mlflow_job_user.py fake2real-jobs fake2real

Run once per server, as the admin (whose password stays with whoever runs the server): creates
the user (password from $FAKE2REAL_JOB_PASSWORD, never an argument) and the experiment when they
do not exist yet, and grants the user EDIT on that experiment. The nodes then log with the job
user's password only (cluster/README.md).
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("username")
    parser.add_argument("experiment", help="the MLflow experiment the jobs log to (tracking.experiment)")
    args = parser.parse_args()
    needed = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "FAKE2REAL_JOB_PASSWORD")
    missing = [name for name in needed if not os.environ.get(name)]
    if missing:
        sys.exit(f"error: set {', '.join(missing)} (the admin's URI and credentials, the job user's password)")

    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client
    from mlflow.tracking import MlflowClient

    from fake2real.track.names import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

    uri = os.environ["MLFLOW_TRACKING_URI"]
    auth = get_app_client("basic-auth", tracking_uri=uri)
    try:
        auth.create_user(args.username, os.environ["FAKE2REAL_JOB_PASSWORD"])
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(args.experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(args.experiment, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    auth.grant_user_permission(args.username, "experiment", experiment_id, "EDIT")
    print(f"{args.username}: EDIT on experiment '{args.experiment}' ({experiment_id}) at {uri}")


if __name__ == "__main__":
    main()
