"""W&B Weave's ``POST /calls/stats``: time-bucketed usage by model and call metrics.

Served from two domains: ``calls`` (one event per call) for ``call_buckets`` and
``call-usage`` (one event per call and model) for ``usage_buckets``. Every query is
confined to the caller's org and to ``project_id``; a project of another org, or one
that does not exist, answers the same: zero-filled call buckets and no usage buckets.

Choices where the seed is silent:

* **Auth.** ``Authorization: Basic base64(<any user>:<API key>)``, as Weave documents, or
  ``Bearer <API key>``. The key needs the ``read`` permission (403 otherwise).
* **Body.** Field names exactly as Weave spells them (snake_case). Unknown fields are
  refused (422 ``extra_forbidden``), so a misspelt filter never silently widens the
  answer. Every problem is reported at once. ``start``/``end`` are RFC 3339 strings; one
  without an offset is taken as UTC. ``start`` is inclusive, ``end`` exclusive and
  defaults to now (to the second); ``end`` must be after ``start``, and both lie in
  2000-01-01 .. 2100-01-01. ``timezone`` is an IANA name (``null`` means UTC).
  Lists hold at most 1,000 items, ids 1-200 characters; at most 20 distinct
  percentiles per metric.
* **Granularity.** When absent, the smallest of 60, 300, 600, 900, 1800, 3600, 21600,
  43200, 86400 and 604800 seconds that gives at most 200 buckets (a week beyond that),
  as the gateway's other endpoints choose. When the given or picked size would give more
  than 10,000 buckets it is widened to ceil(range / 10,000) whole seconds (one second
  more at a time in the rare case the unaligned ends still make it 10,001): granularity
  1 over two days becomes 18. ``granularity`` in the response is the size used.
* **Buckets and time zones.** A bucket list covers every bucket that intersects
  ``[start, end)``; the first may start before ``start`` and the last may end after
  ``end``, but only events inside the range count. Buckets are aligned to local
  midnight of the day holding ``start`` in ``timezone``: 3600 in Asia/Kolkata starts
  buckets at :30 UTC. A whole number of days outside UTC means local calendar days
  (86400 in America/New_York starts each bucket at local midnight, so a DST day lasts 23
  or 25 hours); in UTC and for every other size a bucket is exactly ``granularity``
  seconds. ``timestamp`` is the bucket start in RFC 3339 with the zone's offset then
  (``2024-03-10T00:00:00-05:00``; ``Z`` when the offset is 0); ``start``/``end`` are UTC.
* **Metrics.** Each call contributes latency_ms = its latency (calls without one are
  left out of latency aggregations), call_count = 1, error_count = 1 if it raised else 0.
  Each usage event (one call and one model) contributes its tokens and costs, with
  total_tokens = input + output tokens and total_cost = input + output cost. ``sum``,
  ``avg``, ``min``, ``max`` aggregate those values over the bucket; ``count`` is the
  number of values (calls for call_count/error_count, calls with a latency for
  latency_ms, usage events for usage metrics). So call_count sum = calls, error_count
  sum = errors, error_count avg = error rate. Percentiles are exact (PostgreSQL
  ``percentile_cont``: linear interpolation, like numpy's default), ``q`` from 0 to 100
  (both included, as Weave's server takes; ``p0`` is the minimum, ``p100`` the maximum).
* **Keys.** Weave's own: ``<agg>_<metric>`` (``sum_input_tokens``, ``avg_latency_ms``) and
  ``p<q>_<metric>`` with ``q`` as written, never in exponent notation (``p95_latency_ms``,
  ``p99.9_latency_ms``), in the order asked, plus ``count``: calls (call buckets) or usage
  events (usage buckets) in the bucket. A metric named twice is merged and repeats are
  dropped; a spec with neither aggregations nor percentiles means ``sum`` (as in Weave).
  With neither ``usage_metrics`` nor ``call_metrics`` the answer has call_count sum per
  bucket; naming only one list leaves the other's buckets empty.
* **Values.** Token sums/min/max are integers; cost sums/min/max exact decimals (JSON
  numbers); averages and percentiles floats; counts integers; latency sums floats.
  ``call_buckets`` has every bucket, in order: an empty one has sum and count 0 and
  avg/min/max/percentiles null. ``usage_buckets`` has one object per bucket and model
  that has usage, ordered by bucket then model (code-point order).
* **Filters.** Every ``filter`` field applies to both lists (usage events carry the
  call's fields); they combine with AND. A list keeps events whose field is any of its
  values (``input_refs``/``output_refs``: whose refs overlap it); an empty list
  constrains nothing (as in Weave). ``trace_roots_only: true`` keeps calls without a
  ``parentId``; false or absent keeps all.
* **Cost.** Priced like the ``/v2`` endpoints, a point per bucket and list asked for: the
  key's point budget and the expensive-request slots apply (docs/security.md: admission by cost);
  refusals are ``{"detail": ...}`` too (429 with ``Retry-After``, 400 over the whole
  budget).
* **Errors.** Weave is FastAPI, so every error is ``{"detail": ...}``: 422 with
  ``[{"loc": ["body", ...], "msg", "type"}]`` for a bad body (including invalid JSON,
  type ``json_invalid``), and ``{"detail": "<message>"}`` for 401 (with
  ``WWW-Authenticate: Basic``), 403, 405 (with ``Allow: POST``), 413, 503 (with
  ``Retry-After``; a query timeout too) and 500 (request id only).
"""

from stats_gateway.seeds.call_stats.endpoint import route

route_handlers: list = [route]
