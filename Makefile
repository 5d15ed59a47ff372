# The front door. Every target builds the venv it needs first (once; later runs are instant);
# `make up`, `make test` and `make venv` check what they need from the system before that (NEEDS),
# then fetch the JVM jars from Maven Central once (JARS: stack/jars.py).
# Settings come from the environment (LAKEWATCH_*, FINNHUB_API_KEY): see lakewatch/settings/.
NEEDS := python3 -m stack.prerequisites
BOOT := python3 -m stack.bootstrap
CORE := $(BOOT) core --
JARS := $(CORE) -m stack.jars
PYTEST_ARGS ?=

.PHONY: help up down cluster cluster-down cluster-status cluster-logs stop status logs analyst sql train retrain drift test test-unit bench backfill topics kafka venv

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

up:  ## start the whole embedded stack in the background and print its URLs
	@$(NEEDS) up
	@$(JARS)
	@$(CORE) -m stack.cli up

down:  ## stop everything `make up` started
	@$(CORE) -m stack.cli down

cluster:  ## start the distributed profile on this host (root): 3 Kafka brokers, Spark and Trino clusters
	@$(NEEDS) cluster
	@$(JARS)
	@LAKEWATCH_PROFILE=cluster $(CORE) -m stack.cli up

cluster-down:  ## stop everything `make cluster` started and remove its network namespaces
	@LAKEWATCH_PROFILE=cluster $(CORE) -m stack.cli down

cluster-status:  ## every cluster node and service, its pid and health
	@LAKEWATCH_PROFILE=cluster $(CORE) -m stack.cli status

cluster-logs:  ## follow the cluster's node and service logs
	@LAKEWATCH_PROFILE=cluster $(CORE) -m stack.cli logs

stop:  ## stop only the services S="scorer ..." (`make up` starts them again), e.g. to debug one
	@$(if $(S),,$(error say which: make stop S=scorer))
	@$(CORE) -m stack.cli stop $(S)

status:  ## every service, its pid and health
	@$(CORE) -m stack.cli status

logs:  ## follow the service logs
	@$(CORE) -m stack.cli logs

analyst:  ## add a Superset analyst U=name: dashboards and SQL Lab, no admin rights (asks for a password)
	@$(if $(U),,$(error say who: make analyst U=ana))
	@$(CORE) -m stack.cli analyst "$(U)"

sql:  ## run Q="SELECT ..." on the lake (schema market) and print a table
	@$(if $(Q),,$(error say what to run: make sql Q="SELECT count(*) FROM market.trades"))
	@$(CORE) -m stack.cli sql "$(Q)"

train:  ## train the anomaly model on the lake's history; promote it if it beats the champion; NAB=path also scores it on NAB
	@$(if $(NAB),$(BOOT) nab && LAKEWATCH_NAB_DIR=$(NAB)) $(CORE) -m model.train

retrain:  ## trigger Airflow's retrain DAG now (train, gate, move the alias, confirm serving); it also runs daily
	@$(CORE) -m stack.cli retrain

drift:  ## measure the last whole hour's drift from the champion's training data now (Airflow does it hourly)
	@$(CORE) -m model.drift measure

test:  ## run the whole test suite (starts real services on free ports)
	@$(NEEDS) test
	@$(JARS)
	@$(BOOT) superset
	@$(BOOT) rasa
	@$(BOOT) actions
	@$(BOOT) nab
	@$(BOOT) airflow
	@$(CORE) -m pytest $(PYTEST_ARGS)

test-unit:  ## only the fast unit tests
	@$(CORE) -m pytest tests/unit $(PYTEST_ARGS)

bench:  ## run the benchmarks and print their figures (docs/benchmarks.md records them); NAB=path adds NAB
	@$(JARS)
	@$(CORE) benchmarks/bench_ingestion.py
	@$(CORE) benchmarks/bench_parse.py
	@$(CORE) benchmarks/bench_stream.py
	@$(CORE) benchmarks/bench_stream_ceiling.py
	@$(CORE) benchmarks/bench_sql.py
	@$(CORE) benchmarks/bench_model.py
	@$(CORE) benchmarks/bench_model_public.py $(if $(NAB),--nab $(NAB),--sets simulator realistic)
	@$(CORE) benchmarks/bench_scorer.py
	@$(CORE) benchmarks/bench_retrain.py
	@$(CORE) benchmarks/bench_drift.py
	@$(CORE) benchmarks/bench_first_hour.py
	@$(CORE) benchmarks/bench_first_model_hours.py
	@$(CORE) benchmarks/bench_superset.py
	@$(CORE) benchmarks/bench_chatbot.py
	@$(CORE) benchmarks/bench_cluster.py

backfill:  ## simulate DAYS (default 1) of history into the broker, with a progress bar
	@$(CORE) -m stack.cli backfill --days $(or $(DAYS),1)

topics:  ## create the topics if missing and list them
	@$(CORE) -m stack.cli topics

kafka:  ## run a Kafka tool T="console-consumer --topic market.trades --from-beginning" (topics, get-offsets, ...)
	@$(if $(T),,$(error say which: make kafka T="topics --list"))
	@$(CORE) -m stack.cli kafka $(T)

venv:  ## build or update the venvs (core, superset, rasa, actions, nab) and fetch the jars (kafka, spark)
	@$(NEEDS) venv
	@$(JARS)
	@$(BOOT) superset
	@$(BOOT) rasa
	@$(BOOT) actions
	@$(BOOT) nab
	@$(BOOT) airflow
