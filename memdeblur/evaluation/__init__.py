"""Scoring restored frames and reporting them: per-frame score records, result tables (Markdown, CSV and the
JSON file tools read), comparison pictures and complexity counts."""
