-- Optimistic concurrency for wishlists: every item change names the version
-- its writer loaded; a mismatch (another activation wrote first, e.g. during
-- a membership change) aborts the whole atomic batch with SQLSTATE 40001.
CREATE FUNCTION bump_wishlist_version(p_id TEXT, p_expected BIGINT, p_now_ms BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
  v BIGINT;
BEGIN
  UPDATE wishlists
     SET version = version + 1, updated_at = to_timestamp(p_now_ms / 1000.0)
   WHERE id = p_id AND version = p_expected
  RETURNING version INTO v;
  IF v IS NULL THEN
    RAISE EXCEPTION 'wishlist % changed since version %', p_id, p_expected
      USING ERRCODE = '40001';
  END IF;
  RETURN v;
END
$$;
