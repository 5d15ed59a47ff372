"""The stream job: Kafka topics -> Spark Structured Streaming -> Delta tables, exactly once.

A package, so its modules import each other by their full names and Spark's Python workers find
`spark.kafka_source` in the venv like any installed module. Spark's own Python library is
`pyspark`, so `import spark` shadows nothing.
"""
