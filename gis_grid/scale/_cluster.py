"""Which Dask cluster runs the batch: a scheduler address, or a LocalCluster started here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from gis_grid.errors import GridError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["SCHEDULER_ENV", "SchedulerError", "dask_client", "scheduler_address"]

#: Environment variable naming the scheduler (the ``--scheduler`` default), like the other
#: ``GIS_GRID_*`` settings. Unset or empty: a LocalCluster on this machine.
SCHEDULER_ENV = "GIS_GRID_DASK_SCHEDULER"

#: ``tcp://host:port``, ``tls://host:port``, ``inproc://...``, ``ucx://...`` or ``host:port``.
_ADDRESS = re.compile(r"^(?:(tcp|tls|inproc|ucx|ws|wss)://)?[^\s/:]+(?::(\d{1,5}))?(?:/.*)?$")


class SchedulerError(GridError):
    """The Dask scheduler cannot be reached or its address is malformed."""


def scheduler_address() -> str | None:
    """Return the scheduler address set in :data:`SCHEDULER_ENV`, or ``None`` (local cluster).

    Returns
    -------
    str or None
        The address, stripped; ``None`` when unset or empty.

    Examples
    --------
    >>> import os
    >>> os.environ.pop("GIS_GRID_DASK_SCHEDULER", None) and None
    >>> scheduler_address() is None
    True
    """
    value = os.environ.get(SCHEDULER_ENV, "").strip()
    return value or None


def _check_address(address: str) -> None:
    match = _ADDRESS.match(address)
    port = match.group(2) if match else None
    if match is None or (port is not None and not 0 < int(port) < 65536):
        msg = (
            f"--scheduler {address!r} is not a Dask scheduler address: give it as "
            "tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786, as printed by `dask scheduler`), "
            "or leave it out to start a local cluster"
        )
        raise SchedulerError(msg, problems=[{"field": "scheduler", "value": address}])


@contextmanager
def dask_client(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    timeout: float = 10.0,
    memory_limit: str | float | None = "auto",
) -> Iterator[Client]:
    """Connect to a Dask scheduler, or start a LocalCluster, for the ``with`` block.

    The client becomes Dask's default for the block, so every ``compute`` in it (and the
    functions of :mod:`gis_grid.scale`) runs on that cluster. Nothing here schedules work
    itself: Dask's scheduler does.

    Parameters
    ----------
    scheduler
        ``tcp://HOST:PORT`` of a running scheduler (``dask scheduler``; workers started with
        ``dask worker tcp://HOST:PORT`` on each machine). ``None``: the address in
        :data:`SCHEDULER_ENV`, and if that is unset a LocalCluster on this machine.
    workers
        Local cluster only: number of worker processes (default: one per core).
    threads_per_worker
        Local cluster only: threads per worker. One thread per process suits the
        Python-heavy per-town work; the assignment releases the GIL in shapely and numpy.
    processes
        Local cluster only: ``False`` runs the workers as threads of this process (tests).
    timeout
        Seconds to wait for the scheduler before giving up (never hangs).
    memory_limit
        Local cluster only: per-worker memory limit (``"auto"``: the machine's memory
        shared out among the workers), past which Dask spills and then pauses the worker.

    Yields
    ------
    distributed.Client

    Raises
    ------
    SchedulerError
        A malformed address, or no scheduler answering there within ``timeout`` seconds.

    Examples
    --------
    >>> with dask_client(workers=2) as client:  # doctest: +SKIP
    ...     result = assign_partitioned(points, grids).compute()
    """
    from distributed import Client, LocalCluster

    address = scheduler.strip() if scheduler is not None else scheduler_address()
    if address:
        _check_address(address)
        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            msg = (
                f"no Dask scheduler answered at {address} within {timeout:g} s ({exc}). Start "
                f"one there (`dask scheduler`, then `dask worker {address}` on each machine), "
                "check the firewall, or leave --scheduler out to start a local cluster"
            )
            raise SchedulerError(msg, problems=[{"field": "scheduler", "value": address}]) from exc
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            memory_limit=memory_limit,
            dashboard_address=":0",  # any free port: never clash with another cluster
        ) as cluster,
        Client(cluster, timeout=timeout) as client,
    ):
        yield client
