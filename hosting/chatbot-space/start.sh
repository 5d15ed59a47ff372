#!/usr/bin/env bash
# The chatbot Space's start: the lake snapshot, then the action server, Rasa and the chat page,
# started as `make up` starts them. A Space routes one port to the container (app_port, the chat
# page's); the chat page forwards to Rasa and Rasa calls the actions inside the container.
# When one of the three exits, this stops the other two and exits too, so the Space shows
# the failure and can be restarted, instead of serving a page whose bot is gone.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m hosting.fetch_lake
venvs=$LAKEWATCH_VENV_HOME

stop() {
  kill $(jobs -p) 2>/dev/null || true
  wait || true
}
trap 'stop; exit 143' TERM INT

"$venvs/actions/bin/python" -m chatbot.action_server &
# Rasa's environment as `make up` gives it (chatbot/training.py, RASA_ENV).
env $(python3 -c 'from chatbot.training import RASA_ENV; print(" ".join(f"{k}={v}" for k, v in RASA_ENV.items()))') \
  "$venvs/rasa/bin/python" -m chatbot.rasa_server &
"$venvs/actions/bin/python" -m chatbot.chat_page &

status=0
wait -n || status=$?
echo "start.sh: a service exited (status $status); stopping the others" >&2
stop
exit $((status ? status : 1))  # none of them ends by itself: even a clean exit is a failure here
