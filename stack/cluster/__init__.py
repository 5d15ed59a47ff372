"""The distributed profile on one host (`make cluster`): every engine in its clustered form, each
node a host of its own in a network namespace, so that tests can kill a node or cut it off.

The nodes and their addresses are the kernel's (lakewatch/settings/cluster.py), and compose's
services are checked against them. network.py makes the namespaces and cuts them off;
kafka.py, spark.py and trino.py configure and start each engine's nodes; nodes.py makes them
services of the runner, which starts them before the rest of the stack.
"""
