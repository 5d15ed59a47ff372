"""Prometheus for the stack: scrape config, alert rules (with promtool tests), the console page."""
