"""What the Prefect flows need besides the stage functions, one module per job.

- `dvc`: the pipeline's stage names, `dvc status`, and recording a flow's work in dvc.lock.
- `processes`: a training in a fresh Python process, its errors carried back as data.
- `runners`: Prefect's side: task runners, the retry condition, log routing, the
  retrain concurrency limit.

The retrain run's artifact is `bakeoff.retrain_summary`.

Importing any of them imports neither Prefect nor DVC: they are imported where they are used.
"""
