"""The privileges a PostgreSQL role needs to screen, checked in one query when the bot or a
terminal dialog starts: SELECT on every table and USAGE on every sequence. Without it a
role lacking one (say, USAGE on the outbox's sequence) is found only at the verdict, after
a whole dialog was typed. README grants more (INSERT, UPDATE, DELETE on every table); a
site may grant less where the bot does not write (no UPDATE or DELETE on the screening
log, no write to ``schema_version``), so those are not asked for here: a write the role
may not make fails as it is made ("NOT saved")."""

from __future__ import annotations

from ..errors import DatabaseBroken
from .db import Store, our_tables

TABLE_PRIVILEGES = ("SELECT",)  # checked (README's grant below gives more)
GRANT = {
    "table": "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "sequence": "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
}

# What the role lacks: (schema, kind, name, privilege, role), schema and role quoted as
# SQL identifiers. nextval() needs USAGE or UPDATE on a sequence: either will do. (A
# table's other dependants, its indexes and TOAST table, are no sequences: CASE keeps
# has_sequence_privilege from seeing them.)
_MISSING = """
SELECT quote_ident(n.nspname), 'table', c.relname, p.privilege, quote_ident(current_user)
FROM unnest(?::text[]) AS t(name)
JOIN pg_class c ON c.oid = to_regclass(t.name)
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN unnest(?::text[]) AS p(privilege)
WHERE NOT has_table_privilege(c.oid, p.privilege)
UNION ALL
SELECT quote_ident(n.nspname), 'sequence', s.relname, 'USAGE', quote_ident(current_user)
FROM unnest(?::text[]) AS t(name)
JOIN pg_depend d ON d.refobjid = to_regclass(t.name) AND d.classid = 'pg_class'::regclass
JOIN pg_class s ON s.oid = d.objid
JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE CASE WHEN s.relkind = 'S' THEN NOT has_sequence_privilege(s.oid, 'USAGE, UPDATE') END
"""


def refuse_missing(db: Store) -> None:
    """On PostgreSQL, refuse (DatabaseBroken) a role without a privilege it needs to
    screen, in one line naming what is missing and the GRANT that gives it."""
    if db.dialect != "postgres":
        return
    tables = sorted(our_tables())
    rows = db.read().all(_MISSING, (tables, list(TABLE_PRIVILEGES), tables))
    if not rows:
        return
    role = rows[0][4]
    lacking: dict[tuple[str, str], list[str]] = {}  # (kind, name) -> the privileges it lacks
    for _, kind, name, privilege, _ in rows:
        lacking.setdefault((kind, name), []).append(privilege)
    named: dict[str, list[str]] = {}  # "INSERT, DELETE on table" -> the tables' names
    for (kind, name), privileges in sorted(lacking.items()):
        privileges.sort(key=(*TABLE_PRIVILEGES, "USAGE").index)
        named.setdefault(f"{', '.join(privileges)} on {kind}", []).append(name)
    missing = "; ".join(
        f"{on}{'s' if len(names) > 1 else ''} {', '.join(names)}" for on, names in named.items()
    )
    grants = sorted({GRANT[kind].format(schema=schema, role=role) for schema, kind, *_ in rows})
    raise DatabaseBroken(
        f"the role {role} lacks privileges screen-bot needs on {db.where} ({missing}): as "
        f"the tables' owner, run {'; '.join(grants)}"
    )
