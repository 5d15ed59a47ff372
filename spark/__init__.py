"""The stream job: Kafka topics -> Spark Structured Streaming -> Delta tables, exactly once.

A package, so its modules import each other by their full names, and executors on a cluster
import them from the venv like any installed module. Spark's own Python library is `pyspark`,
so `import spark` shadows nothing.
"""
