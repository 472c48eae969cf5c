-- Limits: concurrency and rate limits of a flow and its steps (runtime configuration, not
-- shape). Written by set_limits (deploy, compiled SQL), read by claim_tasks, which leases a
-- task only while every limit on it has room. One row per (flow, step, kind); step_slug ''
-- is the whole flow.
-- * concurrency: at most max_count tasks of the scope leased at once (status 'started').
-- * rate: at most max_count tasks of the step claimed per `per` (a token bucket of
--   max_count tokens refilled at max_count per `per`; see rate_buckets).
-- * key: the limit applies per distinct value of that field of the run input (the JSON
--   value, so "7" and 7 differ; runs without the field share the group of null); NULL
--   applies to the scope as a whole.
create table if not exists pgflow.limits (
  flow_slug text not null references pgflow.flows (flow_slug) on delete cascade,
  step_slug text not null default '',
  kind text not null check (kind in ('concurrency', 'rate')),
  max_count int not null check (max_count between 1 and 1000000),
  per interval check (per between interval '1 second' and interval '366 days'),
  key text check (length(key) between 1 and 128),
  created_at timestamptz not null default pgflow._now(),
  primary key (flow_slug, step_slug, kind),
  check ((kind = 'rate') = (per is not null)),
  check (kind = 'concurrency' or step_slug <> '')
);

-- rate_buckets: the tokens left of each rate limit (per key value, '*' when unkeyed), as of
-- refilled_at. A missing row is a full bucket, so idle rows may be deleted at any time
-- (claim_tasks deletes a few idle ones per limited claim). Only claim_tasks writes here,
-- under the flow's limits lock.
create table if not exists pgflow.rate_buckets (
  flow_slug text not null references pgflow.flows (flow_slug) on delete cascade,
  step_slug text not null,
  key_value text not null,
  tokens float8 not null,
  refilled_at timestamptz not null,
  primary key (flow_slug, step_slug, key_value)
);

create index if not exists rate_buckets_idle on pgflow.rate_buckets (refilled_at);
