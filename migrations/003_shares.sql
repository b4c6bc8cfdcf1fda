-- Wishlist shares: the seed's table (SPEC-2025-089) with our text ids, plus
-- what the share actor needs to keep its promises durably:
--   message            the optional note the owner attached (<= 500 chars)
--   expiry_announced   share_expired was written to the outbox; set in the
--                      same statement that writes the event, so the event
--                      goes out exactly once even across restarts
-- Hidden items live in their own table (one row per hidden wishlist item).

CREATE TABLE wishlist_shares (
  id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  wishlist_id      TEXT NOT NULL REFERENCES wishlists(id) ON DELETE CASCADE,
  share_token      VARCHAR(22) NOT NULL UNIQUE,
  created_by       TEXT NOT NULL REFERENCES users(id),
  expires_at       TIMESTAMP WITH TIME ZONE,
  view_count       INTEGER NOT NULL DEFAULT 0,
  items_added      INTEGER NOT NULL DEFAULT 0,
  share_channel    VARCHAR(50),
  is_revoked       BOOLEAN NOT NULL DEFAULT FALSE,
  created_at       TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  updated_at       TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  message          TEXT,
  expiry_announced BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX idx_wishlist_shares_token ON wishlist_shares(share_token);
CREATE INDEX idx_wishlist_shares_wishlist_created
  ON wishlist_shares(wishlist_id, created_at DESC);
CREATE INDEX idx_wishlist_shares_created_by ON wishlist_shares(created_by);
-- The expiry sweeper's question: which live shares passed their expiry and
-- have not been announced yet, and when is the next one due.
CREATE INDEX idx_wishlist_shares_expiry_due ON wishlist_shares(expires_at)
  WHERE expires_at IS NOT NULL AND NOT expiry_announced AND NOT is_revoked;

CREATE TABLE wishlist_share_hidden_items (
  share_id         UUID NOT NULL REFERENCES wishlist_shares(id) ON DELETE CASCADE,
  wishlist_item_id TEXT NOT NULL REFERENCES wishlist_items(id) ON DELETE CASCADE,
  PRIMARY KEY (share_id, wishlist_item_id)
);
