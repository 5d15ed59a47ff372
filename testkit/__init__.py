"""What the tests and the benchmarks both need: real services started on free ports and stopped
by PID (processes), lakes written and read back (lake, known_lake), Superset over REST and in
Chromium (superset_client, browser).

A package of its own, beside tests/ rather than in it, so a benchmark never imports a test
module. Like tests, it stands above the components and may import any of them.
"""
