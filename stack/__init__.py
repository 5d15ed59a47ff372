"""The runner: what starts, watches and stops lakewatch on one machine (`make up`, `make test`).

The top floor of the house plan (docs/architecture.md): it may import every component, and
nothing imports it but tests. The kernel (`lakewatch/`) is the ground floor; the components
(ingestion/, spark/, model/, chatbot/, superset/, trino/, monitoring/) stand on it.
"""
