"""A training run's metrics and tags, written to disk first and sent to MLflow behind it.

Like the W&B client: each epoch's numbers (and each tuning trial, a child run) are appended
to `journal.jsonl` in the run's state folder (fsynced), and a background thread sends them.
While the tracking server is away the thread keeps trying (backoff) and the training goes
on; `flush` at the end waits until everything is sent, or until the outage has lasted
`tracking.outage_timeout` (`TrackingUnavailable`). `journal.sent` records how far the run
has received, so the rerun after a failed flush sends the rest to the same run, each entry
once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from bakeoff.tracking import outage

_BATCH = 1000  # metrics per log_batch (MLflow's limit; tags: 100)


class Journal:
    """The pending metrics and tags of one run, and the thread that sends them.

    Args:
        path: The journal file (its folder holds `<name>.sent` too).
        run_id: The run its entries go to (entries of a run the store lost go to this one).
    """

    def __init__(self, path: Path, run_id: str) -> None:
        self.path, self.run_id = Path(path), run_id
        self.cursor = self.path.with_suffix(".sent")
        self.entries: list[dict[str, Any]] = []
        if self.path.is_file():
            text = self.path.read_text()
            # A kill -9 mid-write leaves at most a partial last line: it was never journaled.
            complete = text[: text.rfind("\n") + 1]
            if complete != text:
                self.path.write_text(complete)
            self.entries = [json.loads(line) for line in complete.splitlines()]
        self.sent = 0
        if self.cursor.is_file():
            saved = json.loads(self.cursor.read_text())
            if saved.get("run_id") == run_id:
                self.sent = min(int(saved["sent"]), len(self.entries))
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send_loop, name="bakeoff-journal", daemon=True)
        self._thread.start()

    def metrics(self, metrics: dict[str, float], step: int, model_id: str | None = None) -> None:
        """Journal metrics at `step` (timestamped now), to be sent behind the training."""
        now = int(time.time() * 1000)
        self._append({"metrics": metrics, "step": step, "time": now, "model_id": model_id})

    def tags(self, tags: dict[str, str]) -> None:
        """Journal run tags."""
        self._append({"tags": {k: str(v) for k, v in tags.items()}})

    def child(
        self, name: str, params: dict[str, Any], metrics: dict[str, float], tags: dict[str, str]
    ) -> None:
        """Journal a finished child run of this run (a tuning trial), created behind."""
        params = {k: str(v) for k, v in params.items()}
        self._append({"child": {"name": name, "params": params, "metrics": metrics,
                                "tags": {k: str(v) for k, v in tags.items()}}})  # fmt: skip

    def _append(self, entry: dict[str, Any]) -> None:
        if self.error is not None:  # MLflow refused an earlier entry: the training stops
            raise self.error
        with self._lock:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self.entries.append(entry)
        self._wake.set()

    def pending(self) -> int:
        """How many entries the run has not received yet."""
        with self._lock:
            return len(self.entries) - self.sent

    def flush(self) -> None:
        """Wait until the run received every entry.

        Raises:
            TrackingUnavailable: The outage outlasted `tracking.outage_timeout` (the journal
                stays on disk: the rerun sends the rest).
            Exception: MLflow refused an entry (as raised).
        """
        self._wake.set()
        while self.pending():
            if self.error is not None:
                raise self.error
            since = outage.OUTAGE.since
            if since is not None and time.monotonic() - since >= outage.OUTAGE.timeout:
                waited = time.monotonic() - since
                outage.OUTAGE.passed()  # the next stage in this process gets its own window
                raise outage.unavailable(
                    f"send {self.pending()} journaled entries to run {self.run_id}",
                    self._last or ConnectionError("no answer"),
                    waited,
                )
            time.sleep(0.2)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop the sending thread (what is not sent stays in the journal)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=120)

    _last: BaseException | None = None

    def _send_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            with self._lock:
                batch = self.entries[self.sent : self.sent + 100]
            if not batch:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._send(batch)
            except Exception as exc:
                if not outage.is_outage(exc):
                    self.error = exc
                    return
                self._last = exc
                outage.OUTAGE.failed()
                self._wake.wait(outage.backoff(attempt))
                self._wake.clear()
                attempt += 1
                continue
            attempt = 0
            outage.OUTAGE.passed()
            with self._lock:
                self.sent += len(batch)
                tmp = self.cursor.with_suffix(".tmp")
                tmp.write_text(json.dumps({"run_id": self.run_id, "sent": self.sent}))
                tmp.replace(self.cursor)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        from mlflow.entities import Metric, RunTag

        from bakeoff.tracking.store import mlflow_client

        metrics = [
            Metric(k, float(v), e["time"], e["step"], model_id=e.get("model_id"))
            for e in batch
            for k, v in e.get("metrics", {}).items()
        ]
        tags = [RunTag(k, v) for e in batch for k, v in e.get("tags", {}).items()]
        client = mlflow_client()
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(self.run_id, metrics=metrics[start : start + _BATCH])
        for start in range(0, len(tags), 100):
            client.log_batch(self.run_id, tags=tags[start : start + 100])
        children = [e["child"] for e in batch if "child" in e]
        if children:
            from bakeoff.tracking.child_runs import create_child_run

            for c in children:  # each once, also when this batch is sent again
                create_child_run(self.run_id, c["name"], c["params"], c["metrics"], c["tags"])
