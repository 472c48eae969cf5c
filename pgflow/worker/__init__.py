"""The worker: claims tasks of its flows, runs their handlers, reports the results.

See :class:`Worker`; the modules below it are internal:

- ``worker``: the public class, its lifecycle and ``stop()``;
- ``loop``: the claim loop and graceful shutdown;
- ``runner``: one task's context, arguments, handler call, timeout and output;
- ``reporter``: batched, retried storage of results;
- ``cancel``: cancellation reaching running handlers (``ctx.cancelled``, the grace);
- ``store``: every SQL call the worker makes;
- ``listener``, ``heartbeat``, ``signals``, ``retry``, ``settings``: the rest.
"""

from __future__ import annotations

from pgflow.worker.worker import Worker as Worker

__all__ = ["Worker"]
