"""Build the static HTML report of a sweep from MLflow: tables and figures a person looks at.

    python jobs/report.py                                  # the latest sweep in ./mlflow.db
    python jobs/report.py --tracking-uri http://127.0.0.1:5000 --sweep-run <run id> --output report.html

The report is one self-contained HTML file, also attached to the sweep's MLflow run.
"""

import argparse
from pathlib import Path

from fake2real import cli
from fake2real.entrypoints import report_job
from fake2real.sections import TrackingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///$PWD/mlflow.db)")
    parser.add_argument("--experiment", default=TrackingConfig().experiment, help="MLflow experiment of the sweep")
    parser.add_argument("--sweep-run", help="the sweep's MLflow run id (default: the experiment's latest sweep)")
    parser.add_argument("--output", type=Path, help="HTML file to write (default: outputs/reports/<sweep>-<run id>.html)")
    parser.add_argument("--no-saliency", action="store_true", help="skip the Grad-CAM figure (it loads every chosen model)")
    args = parser.parse_args()
    print(report_job(args.tracking_uri, args.experiment, args.output, args.sweep_run, saliency=not args.no_saliency))


if __name__ == "__main__":
    cli.main(main)
