"""Experiment tracking: a sweep, its trials and retrains, and a single run, logged to an MLflow tracking server
(`--mlflow URI` of jobs.sweep, jobs.train and jobs.report). The sweep is a parent run; each trial and retrain a
nested run, found again by its tags, so a resumed sweep or a second `jobs.report --mlflow` adds only what is missing.

Imports the sweep (its records, folder and observer hook, tune/sweep/observers.py) and the engine; nothing of
analysis/ or report/: the command hands over the report's files once it has written them. A tracker is never worth
a sweep: every MLflow call goes through one guard (`tracker.Tracker.attempt`) that says once what failed.
"""
