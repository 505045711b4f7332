"""Bulk load (``stats-gateway load``) and rollup rebuild (``stats-gateway rebuild``).

Choices where the issue is silent:

* **Org.** ``--org`` takes an org id or name, and the org must exist. ``load`` never
  creates one, so a misspelt name cannot put events in a new org that no key reads;
  ``stats-gateway create-key --org NAME`` creates an org and its key.
* **Formats.** NDJSON: one event object per line, exactly as in ``POST
  /v2/ingest/<domain>``; blank lines are skipped. CSV: the header names event fields
  (``eventId``, ``ts``, ``workspaceId``, …); an empty cell leaves the field out (its
  default applies); integers and numbers are written plainly, ``ts`` as RFC 3339 or unix
  seconds, booleans as ``true``/``false``, lists as JSON arrays (``["a","b"]``),
  decimals as written. An unknown or repeated column stops the load at the header.
  ``--format`` chooses; otherwise a ``.csv`` name means CSV and anything else NDJSON.
  ``-`` reads stdin (from a pipe, the bar has no total).
* **Validation.** Ingest's own validator, so every API rule holds, the repo rule
  included. By default the load is atomic: any invalid line means nothing is written.
  The rest of the file is still checked, so the count is complete; the first 20
  problems (``--max-errors``) are listed with their line and field, and the exit status
  is 1. ``--skip-invalid`` loads the valid events, and lists and counts the skipped lines.
* **Idempotent.** An event whose ``eventId`` the org already has is skipped and counted
  as a duplicate; within a file the first line with an id wins. Loading a file twice
  inserts nothing the second time.
* **One transaction.** Events, display names and the org's rollups for the domain
  commit together, or not at all. While a load runs, API ingest into the same org that
  names the same entities waits for it.
* **Cost.** Each chunk's inserted rows are aggregated and merged into the rollups in the
  very statement that inserts them (as an ingest batch is), so a load costs in
  proportion to what it loads, whatever the size of the org.
* **Memory.** The file is read in chunks of 50,000 events; one chunk is written (through
  the TEMP staging table) while a thread reads and validates the next, so at most two
  are held and memory stays flat whatever the file size.
* **Output.** A progress bar with events/s on stderr; then a summary on stdout (read,
  inserted, duplicates, skipped, rebuild time, elapsed, events/s). ``ANALYZE`` of the
  event table follows the commit when the load changed it noticeably (50 rows plus 10%,
  autovacuum's rule: ``analyze_after_load``). Exit status 0, 1 (invalid lines, nothing written) or 2
  (unknown org, unreadable file, bad CSV header).
* **Rebuild.** ``rebuild`` recomputes the rollups of the given domains (``--domain``,
  repeatable; all by default) for one org (``--org``) or all, in one transaction, and
  prints each domain's time. Rebuilding all orgs empties each rollup table first, so
  queries of that domain wait until the commit.
"""

from stats_gateway.bulk.load import LoadRejected, LoadReport, find_org, load_events
from stats_gateway.bulk.rollups import rebuild, rebuild_domain
from stats_gateway.bulk.sources import read_records

__all__ = ["LoadRejected", "LoadReport", "find_org", "load_events", "read_records", "rebuild",
           "rebuild_domain"]
