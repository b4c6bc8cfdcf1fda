-- Users, catalog, wishlists and the transactional event outbox.
-- Ids are opaque text (tokens carry ids such as "usr_demo"). Timestamps are
-- written by the application from its injectable clock, never by now(), so
-- that scenario replay with a virtual clock stays consistent.

CREATE TABLE users (
  id                  TEXT PRIMARY KEY,
  display_name        TEXT NOT NULL,
  email               TEXT,
  tz                  TEXT NOT NULL DEFAULT 'UTC',
  region              TEXT NOT NULL DEFAULT 'us',
  account_type        TEXT NOT NULL DEFAULT 'customer',
  -- legacy single toggles, read by the preferences migration
  email_notifications BOOLEAN NOT NULL DEFAULT TRUE,
  sms_notifications   BOOLEAN NOT NULL DEFAULT FALSE,
  default_wishlist_id TEXT,
  created_at          TIMESTAMPTZ NOT NULL,
  updated_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE products (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
  currency    CHAR(3) NOT NULL,
  image_url   TEXT NOT NULL DEFAULT '',
  in_stock    BOOLEAN NOT NULL DEFAULT TRUE,
  version     BIGINT NOT NULL DEFAULT 1,
  updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE wishlists (
  id          TEXT PRIMARY KEY,
  owner_id    TEXT NOT NULL REFERENCES users(id),
  title       TEXT NOT NULL,
  is_default  BOOLEAN NOT NULL DEFAULT FALSE,
  version     BIGINT NOT NULL DEFAULT 1,
  created_at  TIMESTAMPTZ NOT NULL,
  updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_wishlists_owner ON wishlists(owner_id);
CREATE UNIQUE INDEX idx_wishlists_one_default ON wishlists(owner_id) WHERE is_default;

CREATE TABLE wishlist_items (
  id          TEXT PRIMARY KEY,
  wishlist_id TEXT NOT NULL REFERENCES wishlists(id) ON DELETE CASCADE,
  product_id  TEXT NOT NULL REFERENCES products(id),
  added_at    TIMESTAMPTZ NOT NULL,
  UNIQUE (wishlist_id, product_id)
);

-- Written in the same transaction as the state change that caused the event;
-- the relay publishes rows in id order and stamps sent_at.
CREATE TABLE event_outbox (
  id          BIGSERIAL PRIMARY KEY,
  event_id    UUID NOT NULL UNIQUE,
  topic       TEXT NOT NULL,
  event_key   TEXT NOT NULL,
  schema_name TEXT NOT NULL,
  payload     JSON NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL,
  sent_at     TIMESTAMPTZ,
  attempts    INTEGER NOT NULL DEFAULT 0,
  last_error  TEXT
);
CREATE INDEX idx_event_outbox_pending ON event_outbox(id) WHERE sent_at IS NULL;
