#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace vantage {

/// A catalog product. Prices are integer minor units (cents) so that sums and
/// comparisons are exact; the gateway renders them as JSON numbers.
struct product {
  std::string product_id;
  std::string name;
  int64_t price_cents = 0;
  std::string currency = "USD";
  std::string image_url;
  bool in_stock = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, product& x) {
  return f(caf::meta::type_name("product"), x.product_id, x.name,
           x.price_cents, x.currency, x.image_url, x.in_stock);
}

inline bool operator==(const product& a, const product& b) {
  return a.product_id == b.product_id && a.name == b.name
         && a.price_cents == b.price_cents && a.currency == b.currency
         && a.image_url == b.image_url && a.in_stock == b.in_stock;
}

} // namespace vantage
