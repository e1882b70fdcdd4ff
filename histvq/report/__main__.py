"""``python -m histvq.report``: :func:`histvq.report.cli.main`, whose errors are reported by
:func:`histvq.errors.run_reporting_errors` as one line and exit code 2."""

from histvq.report.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
