#pragma once

// One render slot: an actor owning one headless Chromium (adapters/
// chromium.hpp) and its warm pages. A render sets the card's HTML on a live
// page (Page.setDocumentContent), waits for fonts and images, and captures
// the clip as PNG; no process or page starts per render. The slot detects a
// crashed browser (the pipe closes) and a hung one (no heartbeat answer),
// fails the renders it had with `browser_lost` so the pool can retry them
// elsewhere, and restarts the browser. It also recycles the browser after a
// number of renders to cap memory, make-before-break: a successor starts and
// warms up while the old browser keeps rendering, then takes the new renders;
// the old one ends when its last render is done. A recycle so costs no
// capacity, only the memory of a second browser for a few seconds.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "adapters/chromium.hpp"

namespace vantage {

/// What a page renders: a complete HTML document and the clip size.
struct page_render {
  std::string html;
  int32_t width = 1200;
  int32_t height = 630;
  std::chrono::milliseconds timeout{5000};
};

/// A captured page, and where the browser's time went.
struct page_output {
  std::string png;
  int32_t load_ms = 0;
  int32_t capture_ms = 0;
  /// Which slot rendered it (for the retry-elsewhere rule and tests).
  int32_t slot = -1;
};

} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::page_render)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::page_output)

namespace vantage {

/// Lets the slots of one pool recycle one at a time. Under even load every
/// slot reaches its render count at about the same moment, and a recycle
/// runs two browsers in its slot for seconds (the successor warming up, then
/// the replaced one finishing its renders): without turns a pool of N would
/// briefly run 2N browsers, and their starts would compete for the cores.
class recycle_gate : public std::enable_shared_from_this<recycle_gate> {
public:
  /// A slot's turn; the next slot may take one once it is released.
  using turn = std::shared_ptr<void>;
  /// A turn, or null while another slot holds it.
  turn try_take() {
    bool expected = false;
    if (!taken_.compare_exchange_strong(expected, true))
      return nullptr;
    return turn{static_cast<void*>(this),
                [self = shared_from_this()](void*) { self->taken_ = false; }};
  }

private:
  std::atomic<bool> taken_{false};
};

struct browser_slot_options {
  chromium_options chromium;
  /// Warm pages per browser (BROWSER_PAGES, default 2).
  int pages = 2;
  /// Restart the browser after this many renders (BROWSER_RECYCLE_AFTER,
  /// default 500); 0 never.
  int recycle_after = 500;
  /// How often a busy browser is asked for a sign of life, and how long it
  /// may take to answer before it counts as hung.
  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds hang_after{2000};
  /// A document like the ones the slot will render, captured once per page
  /// before it counts as ready: the first capture, font and image decoder
  /// start-up (about a second) are paid there, not by a request.
  std::string warm_up_html = "<!DOCTYPE html><html><body></body></html>";
  /// Longest a browser start (process + pages) may take.
  std::chrono::milliseconds start_timeout{15000};
  /// Shared by the slots of a pool (set by the pool); none: recycle freely.
  std::shared_ptr<recycle_gate> recycle_turns;
};

/// Live figures of one slot, read by /metrics and /healthz without a
/// message round trip.
struct slot_status {
  std::atomic<int32_t> pages_ready{0};
  std::atomic<int32_t> busy{0};
  std::atomic<int64_t> renders{0};
  std::atomic<int64_t> restarts{0};
  std::atomic<int64_t> crashes{0};
  std::atomic<int64_t> hangs{0};
  std::atomic<int64_t> timeouts{0};
  std::atomic<int32_t> pid{0};
  /// The slot's second browser around a recycle (the successor warming up,
  /// or the replaced one finishing its renders); 0 when there is none.
  std::atomic<int32_t> other_pid{0};
};

/// Errors a slot answers with: `browser_lost` means the browser died or hung
/// under the render (worth one retry on another page); the others are the
/// render's own failures.
inline constexpr const char* browser_lost_message = "browser lost";

/// True when `err` is the slot's browser-lost failure.
bool is_browser_lost(const caf::error& err);

/// Spawns slot `index`. It answers `page_render` with `page_output`.
caf::actor spawn_browser_slot(caf::actor_system& sys, int index,
                              browser_slot_options opts,
                              std::shared_ptr<slot_status> status);

} // namespace vantage
