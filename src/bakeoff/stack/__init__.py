"""The scale-out stack on one host: PostgreSQL, MLflow, Prefect server and worker, Dask.

`python -m bakeoff.stack up|down|status` (`make stack`, `make stack-down`) starts and stops
the real servers on 127.0.0.1 with their state under `.stack/`; the service tests use the
same code. `postgres` runs a PostgreSQL cluster, `procs` starts and stops the servers.
Importing this package does nothing.
"""
