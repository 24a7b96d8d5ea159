"""Scoring restored frames and reporting them: the ``Evaluator`` (a restore function scored over a test set),
per-frame score records, result tables and the log's summary, run reports (Markdown, CSV and the JSON file tools
read) with the run's measured facts, comparison pictures and complexity counts."""
