-- The booking statuses that hold a master's time: a live booking blocks its slot, counts
-- towards the client's cap of upcoming bookings and is cancelled when its client's account is
-- erased. Every SQL function asks this one (`status = ANY (pz_live_statuses())`); Python's
-- app.models.bookings.LIVE_STATUSES is the same list, and
-- tests/integration/test_sql_definitions.py holds them equal.
--
-- IMMUTABLE, so the planner folds each call into a constant array once per plan: a query
-- plans and costs what it did with the literal list. The exclusion constraint no_double_booking (and the partial index
-- behind it) still spell the list out: an index predicate is evaluated when a row is written
-- and never again, so it must not depend on a function that can be replaced; the same test
-- compares that predicate with this list.
-- Executable by every role (PostgreSQL's default): a constant.
CREATE OR REPLACE FUNCTION pz_live_statuses() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['pending', 'confirmed']
$$;
