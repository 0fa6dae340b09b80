"""This process's connection to a Ray cluster: made, measured and ended.

:class:`Connection` connects (or starts a local instance) only when a sweep
has something to run, tells how many tasks the cluster's nodes have room
for, and ends the connection it made — never one the caller made.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Mapping
from typing import Any

from ...record.store import ExmanError

__all__ = ["Connection"]

#: seconds to find out whether a cluster address answers at all
CONNECT_TIMEOUT = 5.0


class Connection:
    """The connection of this process to a Ray cluster.

    :param ray: the ray module.
    :param address: ``auto``, ``host:port``, ``ray://…`` or ``local`` (a new
        instance, even on a machine that runs a cluster); None:
        ``RAY_ADDRESS``, else ``local``.
    """

    def __init__(self, ray: Any, address: str | None) -> None:
        self.ray = ray
        self.address = address
        self._owned = False
        self._sigterm: Any = None

    def open(self, cpus: float | None = None) -> None:
        """Connect, unless this process is connected already.

        :param cpus: CPUs a new local instance gets at least (it gets this
            machine's count otherwise).
        :raises ExmanError: the cluster cannot be reached.
        """
        ray = self.ray
        if ray.is_initialized():
            return  # made by the caller or an earlier open(): used, left alone
        address = self.address or os.environ.get("RAY_ADDRESS") or "local"
        kwargs: dict[str, Any] = {
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address == "local":
            count = max(os.cpu_count() or 1, math.ceil(cpus or 0))
            kwargs.update(include_dashboard=False, num_cpus=count)
        else:
            _check_reachable(address)
        main = threading.current_thread() is threading.main_thread()
        # a local instance installs a SIGTERM handler that outlives it
        self._sigterm = signal.getsignal(signal.SIGTERM) if main else None
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"at {address!r}" if address != "local" else "(a new instance)"
            message = f"cannot connect to the Ray cluster {where}: {e}"
            raise ExmanError(message) from None
        self._owned = True

    def close(self) -> None:
        """End the connection if :meth:`open` made it."""
        if not self._owned:
            return
        self._owned = False
        self.ray.shutdown()
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None

    def room(self, need: Mapping[str, float]) -> int:
        """How many tasks that each hold ``need`` the live nodes fit at once.

        :raises ExmanError: no node fits one.
        """
        room = 0
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        for node in nodes:
            have = node.get("Resources", {})
            if need:
                room += min(
                    math.floor(have.get(k, 0) / v + 1e-9) for k, v in need.items()
                )
            else:
                room += int(have.get("CPU", 1))
        if room < 1:
            seen = "; ".join(_describe(n.get("Resources", {})) for n in nodes)
            raise ExmanError(
                f"no node of the Ray cluster can run a task that asks for "
                f"{_describe(need)} (the spec's ray: section); the nodes have: "
                f"{seen or 'none'}. Ask for less, or give -j to wait for nodes "
                "that the cluster adds on demand"
            )
        return room


def _check_reachable(address: str) -> None:
    """Fail at once for an address nobody answers at (ray.init retries for long)."""
    if address == "auto":
        return
    host_port = address.split("://", 1)[-1]
    host, _, port_text = host_port.rpartition(":")
    if not host or not port_text.isdigit():
        raise ExmanError(
            f"the Ray address {address!r} is not auto, local, host:port or "
            "ray://host:port"
        )
    try:
        with socket.create_connection((host, int(port_text)), CONNECT_TIMEOUT):
            pass
    except OSError as e:
        raise ExmanError(
            f"cannot reach the Ray cluster at {address!r}: {e.strerror or e}; is "
            "it running (ray start --head), and is the address the head's?"
        ) from None


def _describe(resources: Mapping[str, Any]) -> str:
    shown = []
    for name, amount in sorted(resources.items()):
        if name.startswith("node:") or name == "object_store_memory":
            continue
        if name == "memory":
            shown.append(f"memory={amount / 2**30:.1f}G")
        else:
            shown.append(f"{name}={amount:g}")
    return ", ".join(shown) or "nothing"
