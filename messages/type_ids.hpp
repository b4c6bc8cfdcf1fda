#pragma once

// The project's single registry of atoms and message types. Every type that
// crosses an actor boundary is listed here so it can cross nodes, too; the
// test suite checks each one round-trips through CAF's serializer.

#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/type_id.hpp>

#include "messages/catalog.hpp"
#include "messages/errors.hpp"
#include "messages/region.hpp"
#include "messages/render.hpp"
#include "messages/share.hpp"
#include "messages/user.hpp"
#include "messages/wishlist.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(vantage, caf::first_custom_type_id)

  CAF_ADD_TYPE_ID(vantage, (vantage::product))
  CAF_ADD_TYPE_ID(vantage, (vantage::user_claims))
  CAF_ADD_TYPE_ID(vantage, (vantage::wishlist_item))
  CAF_ADD_TYPE_ID(vantage, (vantage::wishlist_item_view))
  CAF_ADD_TYPE_ID(vantage, (vantage::wishlist_view))
  CAF_ADD_TYPE_ID(vantage, (vantage::item_added))
  CAF_ADD_TYPE_ID(vantage, (vantage::envelope))
  CAF_ADD_TYPE_ID(vantage, (vantage::request_meta))
  CAF_ADD_TYPE_ID(vantage, (vantage::share_request))
  CAF_ADD_TYPE_ID(vantage, (vantage::share_info))
  CAF_ADD_TYPE_ID(vantage, (vantage::shared_wishlist))
  CAF_ADD_TYPE_ID(vantage, (vantage::share_visibility_change))
  CAF_ADD_TYPE_ID(vantage, (std::vector<vantage::share_info>))
  CAF_ADD_TYPE_ID(vantage, (vantage::render_item))
  CAF_ADD_TYPE_ID(vantage, (vantage::render_request))
  CAF_ADD_TYPE_ID(vantage, (vantage::render_result))
  CAF_ADD_TYPE_ID(vantage, (vantage::share_credit))
  CAF_ADD_TYPE_ID(vantage, (vantage::credited_add))

  CAF_ADD_ATOM(vantage, vantage::atom, get, "get")
  CAF_ADD_ATOM(vantage, vantage::atom, put, "put")
  CAF_ADD_ATOM(vantage, vantage::atom, create, "create")
  CAF_ADD_ATOM(vantage, vantage::atom, add, "add")
  CAF_ADD_ATOM(vantage, vantage::atom, remove, "remove")
  CAF_ADD_ATOM(vantage, vantage::atom, ensure, "ensure")
  CAF_ADD_ATOM(vantage, vantage::atom, passivate, "passivate")
  CAF_ADD_ATOM(vantage, vantage::atom, stop, "stop")
  CAF_ADD_ATOM(vantage, vantage::atom, ok, "ok")
  CAF_ADD_ATOM(vantage, vantage::atom, wake, "wake")
  CAF_ADD_ATOM(vantage, vantage::atom, tick, "tick")
  CAF_ADD_ATOM(vantage, vantage::atom, members, "members")
  CAF_ADD_ATOM(vantage, vantage::atom, watch, "watch")
  CAF_ADD_ATOM(vantage, vantage::atom, update, "update")
  CAF_ADD_ATOM(vantage, vantage::atom, evict, "evict")
  CAF_ADD_ATOM(vantage, vantage::atom, idle, "idle")
  CAF_ADD_ATOM(vantage, vantage::atom, drain, "drain")
  CAF_ADD_ATOM(vantage, vantage::atom, check, "check")
  CAF_ADD_ATOM(vantage, vantage::atom, peek, "peek")
  CAF_ADD_ATOM(vantage, vantage::atom, view, "view")
  CAF_ADD_ATOM(vantage, vantage::atom, revoke, "revoke")
  CAF_ADD_ATOM(vantage, vantage::atom, expire, "expire")
  CAF_ADD_ATOM(vantage, vantage::atom, schedule, "schedule")
  CAF_ADD_ATOM(vantage, vantage::atom, list, "list")
  CAF_ADD_ATOM(vantage, vantage::atom, render, "render")
  CAF_ADD_ATOM(vantage, vantage::atom, lookup, "lookup")
  CAF_ADD_ATOM(vantage, vantage::atom, preview, "preview")

CAF_END_TYPE_ID_BLOCK(vantage)

namespace vantage {

/// Registers every project message type with an actor system config.
inline void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::vantage>();
  cfg.add_error_category(caf::atom("vantage"),
                         [](uint8_t code, caf::atom_value,
                            const caf::message& ctx) -> std::string {
                           return std::string{"vantage:"}
                                  + to_string(static_cast<errc>(code)) + " "
                                  + caf::to_string(ctx);
                         });
}

} // namespace vantage
