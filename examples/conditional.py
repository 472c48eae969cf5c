r"""Triage a support ticket: a conditional branch and a step the run can live without.

::

    classify ──► escalate ──┐   (escalate only runs when classify says "urgent": if_)
        └───────────────────┼──► reply   (runs in every case, with what the others made)
    enrich ─────────────────┘   (a CRM lookup; when its retries run out it is skipped,
                                 not fatal: when_exhausted="skip")

``escalate`` runs only for urgent tickets; otherwise it is skipped and ``reply`` gets no
``escalate`` argument (its default, None). ``enrich`` calls a flaky CRM (simulated): for
customers the CRM does not know it fails on every attempt, is skipped, and the reply is
written without a profile instead of failing the run. Try an urgent ticket from a customer
the CRM does not know:

    pgflow run examples/conditional.py --input '{"ticket_id": 42,
        "text": "Checkout is down, we are losing orders!", "customer": "unknown@example.com"}'

and a routine one from a known customer:

    pgflow run examples/conditional.py --input '{"ticket_id": 43,
        "text": "How do I export my invoices?", "customer": "ada@example.com"}'
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import BaseModel

from pgflow import Context, Flow


class Input(BaseModel):
    """The run input: a ticket."""

    ticket_id: int
    text: str
    customer: str


class Triage(BaseModel):
    """What ``classify`` decided."""

    priority: Literal["urgent", "normal"]
    topic: str


class Profile(BaseModel):
    """What the CRM knows about the customer."""

    name: str
    plan: str


class Reply(BaseModel):
    """The answer sent to the customer."""

    ticket_id: int
    priority: str
    escalated: bool
    message: str


flow = Flow("support_triage", input=Input, max_attempts=3, base_delay=1, timeout=30)

_URGENT = ("down", "outage", "losing", "cannot log in", "security")
_CRM = {"ada@example.com": Profile(name="Ada", plan="enterprise")}


@flow.step()
def classify(input: Input) -> Triage:
    """Decide priority and topic (rules here; a model call in real life)."""
    text = input.text.lower()
    priority: Literal["urgent", "normal"] = (
        "urgent" if any(w in text for w in _URGENT) else "normal"
    )
    topic = "billing" if "invoice" in text else "checkout" if "checkout" in text else "other"
    return Triage(priority=priority, topic=topic)


@flow.step(depends_on=[classify], if_={"classify": {"priority": "urgent"}})
def escalate(input: Input, classify: Triage) -> str:
    """Page the on-call engineer: only for urgent tickets (otherwise skipped)."""
    return f"paged on-call about ticket {input.ticket_id} ({classify.topic})"


@flow.step(max_attempts=2, base_delay=0, when_exhausted="skip")
async def enrich(input: Input, ctx: Context) -> Profile:
    """Look the customer up in the CRM; not critical, so exhausted retries skip it."""
    await asyncio.sleep(0.01)
    profile = _CRM.get(input.customer)
    if profile is None:
        raise LookupError(f"the CRM has no customer {input.customer!r}")
    return profile


@flow.step(depends_on=[classify, escalate, enrich])
def reply(
    input: Input,
    classify: Triage,
    escalate: str | None = None,
    enrich: Profile | None = None,
) -> Reply:
    """Answer the customer with whatever the other steps produced."""
    greeting = f"Hi {enrich.name}" if enrich else "Hello"
    if escalate:
        body = "we are on it right now; an engineer has been paged."
    else:
        body = f"thanks for your question about {classify.topic}; we will answer within a day."
    return Reply(
        ticket_id=input.ticket_id,
        priority=classify.priority,
        escalated=escalate is not None,
        message=f"{greeting}, {body}",
    )
