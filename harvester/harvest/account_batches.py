"""The batched way of `account_insights`: one account's planned requests -> Graph batch POSTs.

Requests are owned by what is committed together (an account insights piece): each owner is
finished, and handed on, once every request of it has its final answer, so owners complete as
units in whatever order their answers come. The requests of all owners share the batches, oldest
owner first, so an account's whole window costs a few full POSTs, not one per piece; several
workers send them side by side (the account's share of its request budget).

What an answer means stays with the stage (`prepare` before an op goes, `answer` after); this
module only moves ops, as media insights do (`batched_insights`): `null` and transient ops are asked
again after a backoff by the client's retry policy, by the worker that met them (so no other worker
sends them before their delay), and a POST that failed for good is every op's final answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio

from harvester.graph.batch import BatchOp
from harvester.graph.client import GraphClient
from harvester.graph.errors import GraphError, detached
from harvester.harvest.batched_insights import batch_room, transient
from harvester.models import Account

Owner = TypeVar("Owner")
Request = TypeVar("Request")


@dataclass(eq=False)  # asks are compared by identity
class _Ask(Generic[Owner, Request]):
    owner: Owner
    request: Request
    attempts: int = 0


class _Run(Generic[Owner, Request]):
    """One `BatchRounds.run`: the asks waiting, how many requests each owner has unanswered,
    the POSTs under way and an event set each time one comes back."""

    def __init__(
        self,
        queue: deque[_Ask[Owner, Request]],
        left: dict[int, int],
        finished: Callable[[Owner], Awaitable[None]],
    ) -> None:
        self.queue = queue
        self.left = left
        self.finished = finished
        self.in_flight = 0
        self.returned = anyio.Event()

    async def settle(self, owner: Owner, more: int) -> None:
        """One request of `owner` answered, leading to `more` new ones."""
        self.left[id(owner)] += more - 1
        if self.left[id(owner)] == 0:
            await self.finished(owner)

    def back(self) -> None:
        self.in_flight -= 1
        self.returned.set()
        self.returned = anyio.Event()


class BatchRounds(Generic[Owner, Request]):
    """Sends owners' requests in batch POSTs of at most `batch_size` ops, `workers` at a time.

    `prepare(owner, request)`: the request as it goes now (what the run learned meanwhile
    applied), or None when nothing of it is left to ask. `op(owner, request)`: its batch op.
    `answer(owner, request, result)`: takes in a final result (the parsed reply or the
    `GraphError`) and returns the requests to ask next for it. `finished(owner)`: called once
    per owner whose every request was answered; owners left unanswered when the account closed
    are not (the caller says what becomes of them).
    """

    def __init__(
        self,
        client: GraphClient,
        *,
        batch_size: int,
        workers: int,
        prepare: Callable[[Owner, Request], Request | None],
        op: Callable[[Owner, Request], BatchOp],
        answer: Callable[[Owner, Request, Any], list[Request]],
    ) -> None:
        self._client = client
        self._batch_size = batch_size
        self._workers = max(1, workers)
        self._prepare = prepare
        self._op = op
        self._answer = answer

    async def run(
        self,
        account: Account,
        owners: Sequence[tuple[Owner, Sequence[Request]]],
        finished: Callable[[Owner], Awaitable[None]],
    ) -> None:
        state = _Run(
            deque(_Ask(owner, request) for owner, requests in owners for request in requests),
            {id(owner): len(requests) for owner, requests in owners},
            finished,
        )
        for owner, requests in owners:
            if not requests:
                await finished(owner)
        workers = min(self._workers, -(-len(state.queue) // self._batch_size))
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(self._worker, account, state)

    async def _worker(self, account: Account, state: _Run[Owner, Request]) -> None:
        # Workers share one event loop: taking asks off the queue never awaits, so no two take
        # the same ask; a worker leaves when the queue is empty, as the asks still out are
        # another worker's, which comes back for what they lead to.
        queue = state.queue
        while queue:
            if self._client.closed(account.id) is not None:
                queue.clear()  # no call for a closed account; its owners stay unfinished
                return
            room = batch_room(self._client, account, self._batch_size)
            if room < min(len(queue), self._batch_size) and state.in_flight:
                # The gate's room is taken by this account's POSTs under way: wait for one to
                # come back rather than send a sliver of a batch (each POST a round trip).
                await state.returned.wait()
                continue
            asks: list[_Ask[Owner, Request]] = []
            ops: list[BatchOp] = []
            empty: list[Owner] = []
            while queue and len(ops) < room:
                ask = queue.popleft()
                request = self._prepare(ask.owner, ask.request)
                if request is None:
                    empty.append(ask.owner)
                    continue
                ask.request = request
                asks.append(ask)
                ops.append(self._op(ask.owner, request))
            for owner in empty:
                await state.settle(owner, 0)
            if not ops:
                continue
            state.in_flight += 1
            try:
                later = await self._round(account, asks, ops, state)
            finally:
                state.back()
            if later:
                await anyio.sleep(max(delay for _, delay in later))
                queue.extendleft(ask for ask, _ in reversed(later))

    async def _round(
        self,
        account: Account,
        asks: list[_Ask[Owner, Request]],
        ops: list[BatchOp],
        state: _Run[Owner, Request],
    ) -> list[tuple[_Ask[Owner, Request], float]]:
        """One POST: every ask answered, or kept with its backoff to go again."""
        results: list[Any]
        try:
            results = await self._client.batch(account, ops)
            final = False
        except GraphError as error:
            # The POST itself failed for good (its retries spent): every op's answer.
            results, final = [detached(error)] * len(ops), True
        later: list[tuple[_Ask[Owner, Request], float]] = []
        for ask, result in zip(asks, results, strict=True):
            repeat = None if final else transient(result)
            if repeat is not None:
                delay = self._client.retry_delay(ask.attempts, repeat)
                ask.attempts += 1
                if delay is not None:
                    later.append((ask, delay))
                    continue
                result = repeat
            follow = self._answer(ask.owner, ask.request, result)
            # Adaptations go first: they finish an owner already under way.
            state.queue.extendleft(_Ask(ask.owner, r) for r in reversed(follow))
            await state.settle(ask.owner, len(follow))
        return later


__all__ = ["BatchRounds"]
