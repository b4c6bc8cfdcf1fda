#include "actors/product_actor.hpp"

#include "actors/io_pool.hpp"

namespace vantage {

namespace {

struct product_record {
  std::optional<product> value;
};

} // namespace
} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::product_record)

namespace vantage {

void upsert_product(pg_connection& c, const product& p, int64_t now_ms) {
  c.exec("product_upsert",
         "INSERT INTO products(id, name, price_cents, currency, image_url,"
         " in_stock, updated_at) VALUES ($1, $2, $3, $4, $5, $6,"
         " to_timestamp($7::bigint / 1000.0))"
         " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
         " price_cents = EXCLUDED.price_cents, currency = EXCLUDED.currency,"
         " image_url = EXCLUDED.image_url, in_stock = EXCLUDED.in_stock,"
         " updated_at = EXCLUDED.updated_at, version = products.version + 1",
         {p.product_id, p.name, std::to_string(p.price_cents), p.currency,
          p.image_url, p.in_stock ? "true" : "false", std::to_string(now_ms)});
}

void product_state::add_watcher(const caf::actor& who) {
  for (auto& w : watchers)
    if (w == who)
      return;
  watchers.push_back(who);
}

void product_state::notify_update() const {
  if (!current)
    return;
  for (auto& w : watchers)
    caf::anon_send(w, atom::update_v, *current);
}

void product_state::notify_evict() const {
  for (auto& w : watchers)
    caf::anon_send(w, atom::evict_v, product_id);
}

product_actor::behavior_type
product_actor_impl(product_actor::stateful_pointer<product_state> self,
                   std::string product_id, entity_context ctx) {
  self->state.ctx = std::move(ctx);
  self->state.product_id = product_id;
  self
    ->request(self->state.ctx.io, self->state.ctx.db_timeout,
              make_db_task<product_record>(
                [product_id](pg_connection& c) -> caf::expected<product_record> {
                  auto rows = c.exec("product_load",
                                     "SELECT name, price_cents, currency,"
                                     " image_url, in_stock FROM products"
                                     " WHERE id = $1",
                                     {product_id});
                  product_record rec;
                  if (!rows.empty())
                    rec.value = product{product_id,     rows.str(0, 0),
                                        rows.i64(0, 1), rows.str(0, 2),
                                        rows.str(0, 3), rows.boolean(0, 4)};
                  return rec;
                }))
    .await([=](product_record& rec) { self->state.current = rec.value; },
           [=](caf::error& err) { self->quit(std::move(err)); });
  return {
    [=](atom::get) -> caf::result<product> {
      if (!self->state.current)
        return make_error(errc::not_found, "Product "
                                             + self->state.product_id
                                             + " does not exist");
      return *self->state.current;
    },
    [=](atom::get, atom::watch, caf::actor& who) -> caf::result<product> {
      if (!self->state.current)
        return make_error(errc::not_found, "Product "
                                             + self->state.product_id
                                             + " does not exist");
      self->state.add_watcher(who);
      return *self->state.current;
    },
    [=](atom::put, product& p) -> caf::result<product> {
      p.product_id = self->state.product_id;
      auto rp = self->make_response_promise<product>();
      auto now = self->state.ctx.clock->now_ms();
      self
        ->request(self->state.ctx.io, self->state.ctx.db_timeout,
                  make_db_task<bool>([=](pg_connection& c)
                                       -> caf::expected<bool> {
                    upsert_product(c, p, now);
                    return true;
                  }))
        .await(
          [=](bool) mutable {
            self->state.current = p;
            self->state.notify_update();
            rp.deliver(p);
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](atom::stop) {
      self->state.notify_evict();
      self->quit();
    },
  };
}

} // namespace vantage
