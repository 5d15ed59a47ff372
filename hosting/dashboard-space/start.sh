#!/usr/bin/env bash
# The dashboard Space's start: the lake snapshot, then Superset's provisioning (its metadata
# database is SQLite under the state folder, made anew on every start of a free Space), then
# the web server `make up` runs (stack/services/superset.py), bound to the Space's port.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m hosting.fetch_lake
"$LAKEWATCH_VENV_HOME/superset/bin/python" superset/provision.py  # by path: superset/ is not a package
exec python3 -c 'import os
from stack.services.superset import command as superset_command
from lakewatch.settings import load
command = superset_command(load())
os.execv(command[0], command)'
