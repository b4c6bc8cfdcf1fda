-- Rendered share previews (the OG renderer's cache index). One row per
-- stored object; `cache_key` is SHA-256 over the wishlist, its sorted visible
-- item ids and the template version, so identical content within the TTL is
-- served from an existing object instead of rendering again, also after a
-- restart. `rendered_at` is on the injectable clock (virtual in scenarios).
CREATE TABLE preview_objects (
  object_key   TEXT PRIMARY KEY,
  cache_key    TEXT NOT NULL,
  rendered_at  TIMESTAMP WITH TIME ZONE NOT NULL,
  size_bytes   INTEGER NOT NULL
);

CREATE INDEX idx_preview_objects_cache_key
  ON preview_objects(cache_key, rendered_at DESC);
