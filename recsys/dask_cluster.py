"""The Dask distributor: shards of covers hashed, embedded and read on the workers of a Dask cluster, results
streamed back.

``tcp://HOST:PORT`` joins a running scheduler (``dask scheduler`` / ``dask worker``, dask-jobqueue,
dask-kubernetes); ``local:N`` starts a LocalCluster of N worker processes on this machine. Each worker builds
the resident object (the hasher, the index's encoder, the OCR reader) once, in a worker plugin named by what it
builds, and keeps it for every shard; workers read the files themselves, so the paths must be the same on every
worker (a shared file system). Dask re-runs the shard of a worker that dies on another worker; a shard that keeps
killing workers is given up after the scheduler's ``allowed-failures`` (3 by default) and the build fails with a
one-line error.
Only imported when a user asks for a cluster: a plain build never imports Dask.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

from distributed import Client, LocalCluster, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from index.errors import SleeveError
from recsys.distribute import Resident, ShardT

CONNECT_TIMEOUT_S = 5
"""How long to wait for a scheduler before telling the user it cannot be reached."""
WORKER_TIMEOUT_S = 60
"""How long a reachable scheduler may have no worker (workers still starting) before the build gives up."""
_QUIET_LOGGERS = ("distributed", "tornado")
log = logging.getLogger(__name__)


class ClusterError(SleeveError):
    """A cluster that cannot be reached or started, or a shard that keeps killing its workers."""


class DaskDistributor:
    """``recsys.distribute.Distributor`` on a Dask client; one shard is one task."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def worker_count(self) -> int:
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    def map_shards(
        self, task: Callable[[Any, ShardT], Any], resident: Resident, shards: Sequence[ShardT]
    ) -> Iterator[tuple[ShardT, Any]]:
        """Run ``task`` on every shard next to the worker's copy of ``resident``; yield results as they finish."""
        started = time.perf_counter()
        self.client.register_plugin(_ResidentPlugin(resident, self._processes_by_host()), name=resident.key)
        seconds = time.perf_counter() - started
        log.info("workers ready: %d built %s in %.1fs", self.worker_count(), resident.key, seconds)
        futures = {
            self.client.submit(_run_shard, task, resident.key, shard, key=_task_key(resident.key, number)): shard
            for number, shard in enumerate(shards)
        }
        try:
            for future in as_completed(futures):
                shard = futures.pop(future)
                if future.status == "error":
                    error = future.exception()
                    if type(error).__name__ == "KilledWorker":
                        raise ClusterError(
                            f"a shard of {len(shard.paths)} files (first {shard.paths[0]}) killed every worker "
                            "that ran it until Dask gave up (the scheduler's allowed-failures); see the workers' logs"
                        )
                    raise error
                yield shard, future.result()
                future.release()
        finally:
            self.client.cancel(list(futures))

    def _processes_by_host(self) -> dict[str, int]:
        """Worker processes per host, so that each process's encoder uses its share of that host's cores."""
        counts: dict[str, int] = {}
        for worker in self.client.scheduler_info(n_workers=-1)["workers"].values():
            counts[worker["host"]] = counts.get(worker["host"], 0) + 1
        return counts


@contextlib.contextmanager
def open_distributor(address: str) -> Iterator[DaskDistributor]:
    """A Dask distributor for ``tcp://HOST:PORT`` or ``local:N``; the local cluster is stopped on exit."""
    for name in _QUIET_LOGGERS:  # connection retries and shutdown chatter would bury sleeve's own lines
        logging.getLogger(name).setLevel(logging.ERROR)
    if address.startswith("local:"):
        with _local_cluster(address) as cluster, Client(cluster) as client:
            yield DaskDistributor(client)
        return
    parts = urlsplit(address)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise ClusterError(f"--cluster {address!r}: give tcp://HOST:PORT of a Dask scheduler, or local:N")
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S}s "
            f"({type(error).__name__}); is `dask scheduler` running there?"
        ) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT_S)
        except TimeoutError:
            raise ClusterError(f"no Dask worker joined the scheduler at {address} within {WORKER_TIMEOUT_S}s") from None
        yield DaskDistributor(client)


@contextlib.contextmanager
def _local_cluster(address: str) -> Iterator[LocalCluster]:
    """N worker processes with one task slot each: a shard keeps one process busy, its encoder uses the rest
    of that process's share of the cores (_ResidentPlugin)."""
    count = address.removeprefix("local:")
    if not count.isdigit() or int(count) < 1:
        raise ClusterError(f"--cluster {address!r}: local:N needs a number of worker processes N >= 1")
    with LocalCluster(
        n_workers=int(count), threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        yield cluster


class _ResidentPlugin(WorkerPlugin):
    """Builds the resident object once when a worker starts (or joins later) and keeps it for every shard."""

    def __init__(self, resident: Resident, processes_by_host: dict[str, int]) -> None:
        self.resident = resident
        self.processes_by_host = processes_by_host
        self.value: Any = None

    def setup(self, worker: Any) -> None:
        import torch

        host = urlsplit(worker.address).hostname or ""
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.processes_by_host.get(host, 1)))
        self.value = self.resident.build()


def _task_key(resident_key: str, number: int) -> str:
    """A unique Dask key that says what the shard's task does (``encoder:...``, ``hasher:...``) in the dashboard."""
    return f"shard-{number}-{resident_key}-{uuid4().hex}"


def _run_shard(task: Callable[[Any, ShardT], Any], resident_key: str, shard: ShardT) -> Any:
    """The task Dask runs on a worker: ``task`` with the object the worker built for ``resident_key``."""
    return task(get_worker().plugins[resident_key].value, shard)
