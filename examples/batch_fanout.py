r"""Make thumbnails for a batch of images: fan out one task per image, then fan in.

::

    plan ──► thumbnail (map: one task per image, in parallel) ──► report

``plan`` turns the input into a list of jobs; the map step ``thumbnail`` runs once per
job, as many at a time as the worker's concurrency allows, each retried on its own if it
fails; ``report`` receives every result in the order of the jobs. Image work is simulated
(a short sleep and some arithmetic), so the example runs anywhere:

    pgflow run examples/batch_fanout.py \
        --input '{"images": ["cat.jpg", "dog.png", "bird.gif"], "width": 200}'

It prints ``{"report": {...}}``: how many thumbnails were made and how large they are.
"""

from __future__ import annotations

import asyncio
import zlib

from pydantic import BaseModel, Field

from pgflow import Context, Flow


class Input(BaseModel):
    """The run input: which images, and how wide the thumbnails are."""

    images: list[str] = Field(min_length=0, max_length=10_000)
    width: int = Field(default=320, ge=16, le=2048)


class Job(BaseModel):
    """One image to shrink."""

    image: str
    width: int


class Thumbnail(BaseModel):
    """One thumbnail made."""

    image: str
    path: str
    width: int
    height: int
    bytes: int


class Report(BaseModel):
    """What the batch produced."""

    count: int
    total_bytes: int
    largest: str | None


flow = Flow("batch_thumbnails", input=Input, max_attempts=3, base_delay=1, timeout=60)


@flow.array()
def plan(input: Input) -> list[Job]:
    """One job per distinct image, in the order given."""
    return [Job(image=name, width=input.width) for name in dict.fromkeys(input.images)]


@flow.map(array=plan, timeout=30)
async def thumbnail(job: Job, ctx: Context) -> Thumbnail:
    """Shrink one image (simulated). Each element is its own task, retried on its own."""
    await asyncio.sleep(0.02)  # reading and resizing the file would go here
    seed = zlib.crc32(job.image.encode())
    height = job.width * (3 + seed % 2) // 4  # 4:3 or 1:1, depending on the "image"
    ctx.logger.info("thumbnail %d of run %s: %s", ctx.task_index, ctx.run_id, job.image)
    stem = job.image.rsplit(".", 1)[0]
    return Thumbnail(
        image=job.image,
        path=f"thumbnails/{stem}_{job.width}.webp",
        width=job.width,
        height=height,
        bytes=job.width * height // 10 + seed % 997,
    )


@flow.step(depends_on=[thumbnail])
def report(thumbnail: list[Thumbnail]) -> Report:
    """Fan in: every thumbnail, in the order of the jobs."""
    largest = max(thumbnail, key=lambda t: t.bytes, default=None)
    return Report(
        count=len(thumbnail),
        total_bytes=sum(t.bytes for t in thumbnail),
        largest=largest.path if largest else None,
    )
