#include "actors/browser_slot_actor.hpp"

#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <unordered_map>
#include <vector>

#include <simdjson.h>

#include "adapters/json.hpp"
#include "adapters/log.hpp"
#include "adapters/preview_template.hpp"
#include "messages/type_ids.hpp"

namespace vantage {

bool is_browser_lost(const caf::error& err) {
  return is(err, errc::render_failed) && error_message(err) == browser_lost_message;
}

namespace {

using steady = std::chrono::steady_clock;

/// A message from the browser, tagged with the browser generation that sent
/// it so that replies from a browser already replaced are ignored.
struct cdp_in {
  uint64_t generation;
  std::string text;
};

struct cdp_closed {
  uint64_t generation;
};

struct render_deadline {
  uint64_t generation;
  uint64_t job;
};

struct start_deadline {
  uint64_t generation;
};

} // namespace
} // namespace vantage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::cdp_in)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::cdp_closed)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::render_deadline)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vantage::start_deadline)

namespace vantage {
namespace {

/// Waits until web fonts are ready and every image is decoded (a broken
/// image counts as done), at most 3 s, so the capture never shows a
/// half-loaded card.
constexpr const char* wait_for_content_js
  = "Promise.race([Promise.all([document.fonts.ready].concat("
    "Array.from(document.images).map(function(i){"
    "return i.decode().catch(function(){return null;});}))),"
    "new Promise(function(r){setTimeout(r,3000);})])"
    ".then(function(){return document.images.length;})";

using reply_fn
  = std::function<void(simdjson::dom::element result, const std::string& error)>;

struct slot_page {
  std::string target_id;
  std::string session_id;
  std::string frame_id;
  bool ready = false;
  bool busy = false;
  int32_t width = 0;
  int32_t height = 0;
};

/// One browser process, its DevTools calls in flight and its pages. Its
/// generation names it in every message and callback, so nothing from a
/// browser that has ended reaches another.
struct browser_run {
  std::unique_ptr<chromium_process> process;
  int64_t next_call = 0;
  std::unordered_map<int64_t, reply_fn> calls;
  std::vector<slot_page> pages;
  int renders = 0;
  bool heartbeat_out = false;
  steady::time_point heartbeat_sent;
};

struct slot_job {
  uint64_t id = 0;
  page_render req;
  caf::response_promise rp;
  /// The browser and page it runs on, once it runs.
  uint64_t generation = 0;
  int page = -1;
  steady::time_point started;
  steady::time_point loaded;
};

struct slot_state {
  int index = 0;
  browser_slot_options opts;
  std::shared_ptr<slot_status> status;
  /// At most two: the serving browser, and around a recycle either its
  /// successor or the browser it replaced (retiring: no new renders, ends
  /// with its last one).
  std::map<uint64_t, browser_run> browsers;
  uint64_t last_generation = 0;
  /// The browser new renders go to (it may still be warming up); 0 while
  /// none could be started.
  uint64_t serving = 0;
  /// The browser warming up to replace the serving one; 0 when none.
  uint64_t successor = 0;
  /// After a successor failed to start, the next try waits until then.
  steady::time_point successor_not_before;
  /// This slot's turn to recycle (opts.recycle_turns), held from the
  /// successor's start until the slot runs one browser again.
  recycle_gate::turn recycle_turn;
  std::deque<slot_job> waiting;
  std::unordered_map<uint64_t, slot_job> running;
  uint64_t next_job = 1;
  simdjson::dom::parser parser;
  static inline const char* name = "browser_slot";
};

using slot_actor = caf::stateful_actor<slot_state>;

browser_run* find_browser(slot_state& st, uint64_t generation) {
  auto it = st.browsers.find(generation);
  return it == st.browsers.end() ? nullptr : &it->second;
}

bool all_pages_ready(const browser_run& b) {
  return std::all_of(b.pages.begin(), b.pages.end(),
                     [](const slot_page& p) { return p.ready || p.busy; });
}

std::string slot_fields(const slot_state& st, uint64_t generation) {
  return "\"slot\":" + std::to_string(st.index) + ",\"browser\":"
         + std::to_string(generation);
}

/// Ends a browser off the scheduler's threads: the kill, the reap and the
/// reader's join take a few milliseconds that no actor should wait for.
/// A recycle turn given along is held until the process is reaped, so the
/// next slot's recycle starts only once this browser is gone.
void retire(std::unique_ptr<chromium_process> browser,
            recycle_gate::turn turn = nullptr) {
  if (browser)
    std::thread{[b = std::move(browser), t = std::move(turn)]() mutable {
      b.reset();
    }}.detach();
}

void call(slot_actor* self, uint64_t generation, const std::string& session,
          const char* method, const std::string& params, reply_fn then) {
  auto* b = find_browser(self->state, generation);
  if (b == nullptr)
    return;
  auto id = ++b->next_call;
  json_writer w;
  w.begin_object().key("id").value(id).key("method").value(method);
  if (!session.empty())
    w.key("sessionId").value(session);
  w.key("params").raw(params.empty() ? "{}" : params).end_object();
  b->calls.emplace(id, std::move(then));
  if (!b->process || !b->process->send(w.take())) {
    // The pipe is gone; the reader's cdp_closed follows and fails the job.
    b->calls.erase(id);
  }
}

void publish_status(slot_state& st) {
  int32_t ready = 0;
  int32_t pid = 0;
  int32_t other_pid = 0;
  for (auto& [generation, b] : st.browsers) {
    auto p = b.process ? b.process->pid() : 0;
    if (generation != st.serving) {
      other_pid = p;
      continue;
    }
    pid = p;
    for (auto& pg : b.pages)
      ready += pg.ready && !pg.busy;
  }
  st.status->pages_ready = ready;
  st.status->busy = static_cast<int32_t>(st.running.size());
  st.status->pid = pid;
  st.status->other_pid = other_pid;
}

void pump(slot_actor* self);
void setup_page(slot_actor* self, uint64_t generation, size_t index);

/// Starts a browser and its pages; 0 when the process cannot start.
uint64_t launch(slot_actor* self) {
  auto& st = self->state;
  auto gen = ++st.last_generation;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  std::string err;
  auto process = chromium_process::launch(
    st.opts.chromium,
    [me, gen](std::string text) {
      caf::anon_send(me, cdp_in{gen, std::move(text)});
    },
    [me, gen] { caf::anon_send(me, cdp_closed{gen}); }, err);
  if (!process) {
    log_event(log_level::error, "browser_slot", "cannot start chromium: " + err,
              slot_fields(st, gen));
    return 0;
  }
  auto& b = st.browsers[gen];
  b.process = std::move(process);
  b.pages.assign(static_cast<size_t>(std::max(1, st.opts.pages)), slot_page{});
  ++st.status->restarts;
  for (size_t i = 0; i < b.pages.size(); ++i)
    setup_page(self, gen, i);
  self->delayed_send(self, st.opts.start_timeout, start_deadline{gen});
  return gen;
}

/// Gives the recycle turn back once the recycle is over: no successor, and
/// the replaced browser (or a successor that failed) has ended. The turn
/// ends when the last browser retired during it is reaped (`retire`).
void end_recycle_turn_when_done(slot_state& st) {
  if (st.recycle_turn && st.successor == 0 && st.browsers.size() <= 1)
    st.recycle_turn.reset();
}

void end_browser(slot_actor* self, uint64_t generation) {
  auto& st = self->state;
  auto it = st.browsers.find(generation);
  if (it == st.browsers.end())
    return;
  retire(std::move(it->second.process), st.recycle_turn);
  st.browsers.erase(it);
  if (st.serving == generation)
    st.serving = 0;
  if (st.successor == generation)
    st.successor = 0;
  end_recycle_turn_when_done(st);
  publish_status(st);
}

/// A replaced browser ends once no render runs on it any more.
void end_if_retired_and_idle(slot_actor* self, uint64_t generation) {
  auto& st = self->state;
  if (generation == st.serving || generation == st.successor)
    return;
  for (auto& [id, job] : st.running)
    if (job.generation == generation)
      return;
  end_browser(self, generation);
}

/// The serving browser is gone (or there was none yet): a warming successor
/// takes over, else a new browser starts. Renders waiting for a page stay
/// queued for it.
void replace_serving(slot_actor* self) {
  auto& st = self->state;
  if (st.successor != 0) {
    st.serving = st.successor;
    st.successor = 0;
    end_recycle_turn_when_done(st);
    pump(self);
    return;
  }
  st.serving = launch(self);
  if (st.serving == 0) {
    auto waiting = std::move(st.waiting);
    st.waiting.clear();
    for (auto& job : waiting)
      job.rp.deliver(make_error(errc::render_failed, "cannot start chromium"));
    // Generation 0: no browser; try again.
    self->delayed_send(self, std::chrono::seconds{1}, start_deadline{0});
  }
  publish_status(st);
}

/// The successor is warm: it takes the new renders from now on.
void promote_successor(slot_actor* self) {
  auto& st = self->state;
  auto old = st.serving;
  auto* b = find_browser(st, old);
  log_event(log_level::info, "browser_slot", "browser recycled",
            slot_fields(st, st.successor) + ",\"replaced_after_renders\":"
              + std::to_string(b != nullptr ? b->renders : 0));
  st.serving = st.successor;
  st.successor = 0;
  // The turn ends with the old browser (end_browser), now or after its
  // last render.
  end_if_retired_and_idle(self, old);
}

/// Fails every render on the browser and ends it; if it was serving, the
/// successor or a new browser takes its place.
void browser_lost(slot_actor* self, uint64_t generation, const std::string& why) {
  auto& st = self->state;
  std::vector<caf::response_promise> lost;
  for (auto it = st.running.begin(); it != st.running.end();) {
    if (it->second.generation == generation) {
      lost.push_back(std::move(it->second.rp));
      it = st.running.erase(it);
    } else {
      ++it;
    }
  }
  log_event(log_level::warn, "browser_slot", "browser lost: " + why,
            slot_fields(st, generation) + ",\"renders_in_flight\":"
              + std::to_string(lost.size()));
  for (auto& rp : lost)
    rp.deliver(make_error(errc::render_failed, browser_lost_message));
  bool was_serving = generation == st.serving;
  if (generation == st.successor)
    st.successor_not_before = steady::now() + st.opts.start_timeout;
  end_browser(self, generation);
  if (was_serving)
    replace_serving(self);
  pump(self);
}

void finish(slot_actor* self, uint64_t job_id, caf::expected<page_output> out) {
  auto& st = self->state;
  auto it = st.running.find(job_id);
  if (it == st.running.end())
    return;
  auto job = std::move(it->second);
  st.running.erase(it);
  if (auto* b = find_browser(st, job.generation)) {
    if (job.page >= 0 && job.page < static_cast<int>(b->pages.size()))
      b->pages[static_cast<size_t>(job.page)].busy = false;
    if (out)
      ++b->renders;
  }
  if (out) {
    out->slot = st.index;
    ++st.status->renders;
    job.rp.deliver(std::move(*out));
  } else {
    job.rp.deliver(std::move(out.error()));
  }
  end_if_retired_and_idle(self, job.generation);
  pump(self);
}

/// Closes the tab Chromium opens at start (about:blank): it is not one of
/// our pages and would keep a renderer process (tens of MB) for nothing.
void close_other_pages(slot_actor* self, uint64_t generation) {
  call(self, generation, "", "Target.getTargets", "",
       [self, generation](simdjson::dom::element r, const std::string& err) {
         simdjson::dom::array infos;
         if (!err.empty() || r["targetInfos"].get(infos) != simdjson::SUCCESS)
           return;
         auto* b = find_browser(self->state, generation);
         if (b == nullptr)
           return;
         std::vector<std::string> others;
         for (auto info : infos) {
           std::string_view id;
           std::string_view type;
           if (info["targetId"].get(id) != simdjson::SUCCESS
               || info["type"].get(type) != simdjson::SUCCESS || type != "page")
             continue;
           if (std::none_of(b->pages.begin(), b->pages.end(),
                            [&](const slot_page& p) { return p.target_id == id; }))
             others.emplace_back(id);
         }
         for (auto& id : others) {
           json_writer p;
           p.begin_object().key("targetId").value(id).end_object();
           call(self, generation, "", "Target.closeTarget", p.take(),
                [](simdjson::dom::element, const std::string&) {});
         }
       });
}

/// A page of `generation` finished its warm-up.
void page_ready(slot_actor* self, uint64_t generation) {
  auto& st = self->state;
  auto* b = find_browser(st, generation);
  if (b != nullptr && all_pages_ready(*b)) {
    close_other_pages(self, generation);
    if (generation == st.successor)
      promote_successor(self);
  }
  pump(self); // publishes the status
}

/// The first capture of a page costs about a second (raster and encoder
/// start-up); it is paid here, at the card's size, before the page counts
/// as ready, so no request ever waits for it.
template <class Fail>
void warm_up(slot_actor* self, uint64_t gen, size_t index, Fail fail) {
  auto session = find_browser(self->state, gen)->pages[index].session_id;
  call(self, gen, session, "Emulation.setDeviceMetricsOverride",
       R"({"width":1200,"height":630,"deviceScaleFactor":1,"mobile":false})",
       [=](simdjson::dom::element, const std::string& err) {
         if (!err.empty())
           return fail("Emulation.setDeviceMetricsOverride", err);
         json_writer p;
         p.begin_object()
           .key("frameId")
           .value(find_browser(self->state, gen)->pages[index].frame_id)
           .key("html")
           .value(self->state.opts.warm_up_html)
           .end_object();
         call(self, gen, session, "Page.setDocumentContent", p.take(),
              [](simdjson::dom::element, const std::string&) {});
         call(self, gen, session, "Runtime.evaluate",
              std::string{R"({"awaitPromise":true,"expression":)"}
                + json_quote(wait_for_content_js) + "}",
              [](simdjson::dom::element, const std::string&) {});
         call(self, gen, session, "Page.captureScreenshot",
              R"({"format":"png","clip":{"x":0,"y":0,"width":1200,"height":630,"scale":1}})",
              [=](simdjson::dom::element, const std::string& err) {
                if (!err.empty())
                  return fail("Page.captureScreenshot", err);
                auto& pg = find_browser(self->state, gen)->pages[index];
                pg.width = 1200;
                pg.height = 630;
                pg.ready = true;
                page_ready(self, gen);
              });
       });
}

// The callbacks below run only while their browser exists: they are kept in
// its `calls`, which end with it.
void setup_page(slot_actor* self, uint64_t gen, size_t index) {
  auto fail = [self, gen](const std::string& step, const std::string& err) {
    browser_lost(self, gen, step + ": " + err);
  };
  // Each page in a window of its own: a background tab is throttled.
  call(self, gen, "", "Target.createTarget",
       R"({"url":"about:blank","newWindow":true})",
       [=](simdjson::dom::element r, const std::string& err) {
         std::string_view target;
         if (!err.empty() || r["targetId"].get(target) != simdjson::SUCCESS)
           return fail("Target.createTarget", err);
         find_browser(self->state, gen)->pages[index].target_id
           = std::string{target};
         json_writer p;
         p.begin_object().key("targetId").value(target).key("flatten").value(true)
           .end_object();
         call(self, gen, "", "Target.attachToTarget", p.take(),
              [=](simdjson::dom::element r, const std::string& err) {
                std::string_view session;
                if (!err.empty() || r["sessionId"].get(session) != simdjson::SUCCESS)
                  return fail("Target.attachToTarget", err);
                find_browser(self->state, gen)->pages[index].session_id
                  = std::string{session};
                call(self, gen, std::string{session}, "Page.getFrameTree", "",
                     [=](simdjson::dom::element r, const std::string& err) {
                       std::string_view frame;
                       if (!err.empty()
                           || r["frameTree"]["frame"]["id"].get(frame)
                                != simdjson::SUCCESS)
                         return fail("Page.getFrameTree", err);
                       find_browser(self->state, gen)->pages[index].frame_id
                         = std::string{frame};
                       warm_up(self, gen, index, fail);
                     });
              });
       });
}

void run_job(slot_actor* self, slot_job job, size_t page_index) {
  auto& st = self->state;
  auto gen = st.serving;
  auto& pg = find_browser(st, gen)->pages[page_index];
  pg.busy = true;
  job.generation = gen;
  job.page = static_cast<int>(page_index);
  job.started = steady::now();
  auto id = job.id;
  auto req = job.req;
  st.running.emplace(id, std::move(job));
  publish_status(st);
  self->delayed_send(self, req.timeout, render_deadline{gen, id});
  auto session = pg.session_id;
  auto live = [self, id] { return self->state.running.count(id) > 0; };
  auto fail = [self, id](const char* step, const std::string& err) {
    finish(self, id,
           make_error(errc::render_failed, std::string{step} + ": " + err));
  };
  auto capture = [=] {
    json_writer p;
    p.begin_object().key("format").value("png")
      .key("captureBeyondViewport").value(false)
      .key("clip").begin_object()
      .key("x").value(0).key("y").value(0)
      .key("width").value(req.width).key("height").value(req.height)
      .key("scale").value(1).end_object().end_object();
    call(self, gen, session, "Page.captureScreenshot", p.take(),
         [=](simdjson::dom::element r, const std::string& err) {
           if (!live())
             return;
           std::string_view data;
           if (!err.empty() || r["data"].get(data) != simdjson::SUCCESS)
             return fail("Page.captureScreenshot", err);
           auto& job = self->state.running[id];
           page_output out;
           out.png = base64_decode(data);
           auto now = steady::now();
           using std::chrono::duration_cast;
           using std::chrono::milliseconds;
           out.load_ms = static_cast<int32_t>(
             duration_cast<milliseconds>(job.loaded - job.started).count());
           out.capture_ms = static_cast<int32_t>(
             duration_cast<milliseconds>(now - job.loaded).count());
           if (out.png.size() < 8)
             return fail("Page.captureScreenshot", "empty image");
           finish(self, id, std::move(out));
         });
  };
  auto wait_and_capture = [=] {
    json_writer p;
    p.begin_object().key("expression").value(wait_for_content_js)
      .key("awaitPromise").value(true).key("returnByValue").value(true)
      .end_object();
    call(self, gen, session, "Runtime.evaluate", p.take(),
         [=](simdjson::dom::element, const std::string& err) {
           if (!live())
             return;
           if (!err.empty())
             return fail("Runtime.evaluate", err);
           self->state.running[id].loaded = steady::now();
           capture();
         });
  };
  auto set_content = [=] {
    json_writer p;
    p.begin_object()
      .key("frameId")
      .value(find_browser(self->state, gen)->pages[page_index].frame_id)
      .key("html")
      .value(req.html)
      .end_object();
    call(self, gen, session, "Page.setDocumentContent", p.take(),
         [=](simdjson::dom::element, const std::string& err) {
           if (!live())
             return;
           if (!err.empty())
             return fail("Page.setDocumentContent", err);
           wait_and_capture();
         });
  };
  if (pg.width == req.width && pg.height == req.height) {
    set_content();
    return;
  }
  json_writer p;
  p.begin_object().key("width").value(req.width).key("height").value(req.height)
    .key("deviceScaleFactor").value(1).key("mobile").value(false).end_object();
  call(self, gen, session, "Emulation.setDeviceMetricsOverride", p.take(),
       [=](simdjson::dom::element, const std::string& err) {
         if (!live())
           return;
         if (!err.empty())
           return fail("Emulation.setDeviceMetricsOverride", err);
         auto& pg = find_browser(self->state, gen)->pages[page_index];
         pg.width = req.width;
         pg.height = req.height;
         set_content();
       });
}

/// A serving browser past its render count gets a successor, unless one is
/// starting, the one replaced before still has renders, the last start
/// failed moments ago, or another slot of the pool is recycling; meanwhile
/// it keeps rendering.
void start_successor_when_due(slot_actor* self) {
  auto& st = self->state;
  auto* b = find_browser(st, st.serving);
  if (b == nullptr || st.opts.recycle_after <= 0
      || b->renders < st.opts.recycle_after || st.successor != 0
      || st.browsers.size() > 1 || steady::now() < st.successor_not_before)
    return;
  if (st.opts.recycle_turns && !st.recycle_turn) {
    st.recycle_turn = st.opts.recycle_turns->try_take();
    if (!st.recycle_turn)
      return;
  }
  log_event(log_level::info, "browser_slot", "recycling browser",
            slot_fields(st, st.serving) + ",\"renders\":"
              + std::to_string(b->renders));
  st.successor = launch(self);
  if (st.successor == 0) {
    st.successor_not_before = steady::now() + st.opts.start_timeout;
    end_recycle_turn_when_done(st);
  }
}

void pump(slot_actor* self) {
  auto& st = self->state;
  start_successor_when_due(self);
  if (auto* b = find_browser(st, st.serving))
    for (size_t i = 0; i < b->pages.size() && !st.waiting.empty(); ++i) {
      auto& pg = b->pages[i];
      if (!pg.ready || pg.busy)
        continue;
      auto job = std::move(st.waiting.front());
      st.waiting.pop_front();
      run_job(self, std::move(job), i);
    }
  publish_status(st);
}

/// A page whose render timed out may still be busy with it: it is closed
/// and replaced by a fresh one.
void reset_page(slot_actor* self, uint64_t gen, size_t index) {
  auto& pg = find_browser(self->state, gen)->pages[index];
  if (!pg.target_id.empty()) {
    json_writer p;
    p.begin_object().key("targetId").value(pg.target_id).end_object();
    call(self, gen, "", "Target.closeTarget", p.take(),
         [](simdjson::dom::element, const std::string&) {});
  }
  find_browser(self->state, gen)->pages[index] = slot_page{};
  setup_page(self, gen, index);
}

/// One page's renderer died: its render fails, the page is replaced (or, on
/// a retiring browser, left out of service).
void page_crashed(slot_actor* self, uint64_t gen, std::string_view session) {
  auto& st = self->state;
  auto* b = find_browser(st, gen);
  for (size_t i = 0; b != nullptr && i < b->pages.size(); ++i) {
    if (b->pages[i].session_id != session || session.empty())
      continue;
    for (auto& [job_id, job] : st.running)
      if (job.generation == gen && job.page == static_cast<int>(i)) {
        auto rp = job.rp;
        st.running.erase(job_id);
        rp.deliver(make_error(errc::render_failed, browser_lost_message));
        break;
      }
    ++st.status->crashes;
    if (gen == st.serving || gen == st.successor) {
      reset_page(self, gen, i);
    } else {
      b->pages[i].ready = false;
      end_if_retired_and_idle(self, gen);
    }
    break;
  }
  pump(self);
}

void on_message(slot_actor* self, const cdp_in& msg) {
  auto& st = self->state;
  auto* b = find_browser(st, msg.generation);
  if (b == nullptr)
    return;
  simdjson::dom::element doc;
  if (st.parser.parse(msg.text).get(doc) != simdjson::SUCCESS)
    return;
  int64_t id = 0;
  if (doc["id"].get(id) == simdjson::SUCCESS) {
    auto it = b->calls.find(id);
    if (it == b->calls.end())
      return;
    auto fn = std::move(it->second);
    b->calls.erase(it);
    simdjson::dom::element error;
    if (doc["error"].get(error) == simdjson::SUCCESS) {
      std::string_view text = "error";
      if (error["message"].get(text) != simdjson::SUCCESS)
        text = "error";
      fn(doc, std::string{text});
      return;
    }
    simdjson::dom::element result;
    if (doc["result"].get(result) != simdjson::SUCCESS)
      result = doc;
    fn(result, "");
    return;
  }
  std::string_view method;
  if (doc["method"].get(method) != simdjson::SUCCESS)
    return;
  if (method == "Inspector.targetCrashed" || method == "Target.detachedFromTarget") {
    std::string_view session;
    if (doc["sessionId"].get(session) != simdjson::SUCCESS
        && doc["params"]["sessionId"].get(session) != simdjson::SUCCESS)
      return;
    page_crashed(self, msg.generation, session);
  }
}

/// Only the serving browser is watched: a successor has its start deadline,
/// a retiring one its renders' deadlines.
void heartbeat(slot_actor* self) {
  auto& st = self->state;
  self->delayed_send(self, st.opts.heartbeat, atom::tick_v);
  auto gen = st.serving;
  auto* b = find_browser(st, gen);
  bool up = b != nullptr && b->process
            && std::any_of(b->pages.begin(), b->pages.end(),
                           [](const slot_page& p) { return p.ready; });
  if (!up)
    return; // starting: start_deadline watches it
  auto now = steady::now();
  if (b->heartbeat_out) {
    if (now - b->heartbeat_sent > st.opts.hang_after) {
      ++st.status->hangs;
      browser_lost(self, gen,
                   "no answer for " + std::to_string(st.opts.hang_after.count())
                     + " ms (hung)");
    }
    return;
  }
  b->heartbeat_out = true;
  b->heartbeat_sent = now;
  call(self, gen, "", "Browser.getVersion", "",
       [self, gen](simdjson::dom::element, const std::string&) {
         find_browser(self->state, gen)->heartbeat_out = false;
       });
}

caf::behavior browser_slot(slot_actor* self, int index,
                           browser_slot_options opts,
                           std::shared_ptr<slot_status> status) {
  auto& st = self->state;
  st.index = index;
  st.opts = std::move(opts);
  st.status = std::move(status);
  st.status->restarts = -1; // the first start is not a restart
  replace_serving(self);
  heartbeat(self);
  self->set_down_handler([](caf::down_msg&) {});
  return {
    [=](page_render& req) -> caf::response_promise {
      auto& st = self->state;
      slot_job job;
      job.id = st.next_job++;
      job.req = std::move(req);
      job.rp = self->make_response_promise();
      auto rp = job.rp;
      st.waiting.push_back(std::move(job));
      pump(self);
      return rp;
    },
    [=](cdp_in& msg) { on_message(self, msg); },
    [=](cdp_closed& msg) {
      if (find_browser(self->state, msg.generation) == nullptr)
        return; // ended by us
      ++self->state.status->crashes;
      browser_lost(self, msg.generation, "the browser process exited");
    },
    [=](render_deadline& d) {
      auto& st = self->state;
      auto it = st.running.find(d.job);
      if (it == st.running.end())
        return;
      auto page = it->second.page;
      ++st.status->timeouts;
      // Out of service before finish() hands out pages again: it may still
      // be busy with the late render.
      if (auto* b = find_browser(st, d.generation); b != nullptr && page >= 0)
        b->pages[static_cast<size_t>(page)].ready = false;
      finish(self, d.job,
             make_error(errc::render_timeout,
                        "render took longer than "
                          + std::to_string(it->second.req.timeout.count())
                          + " ms"));
      // A retiring browser is not mended: it ends with its last render.
      if (page >= 0 && d.generation == self->state.serving)
        reset_page(self, d.generation, static_cast<size_t>(page));
    },
    [=](start_deadline& d) {
      auto& st = self->state;
      if (d.generation == 0) {
        if (st.serving == 0)
          replace_serving(self);
        return;
      }
      auto* b = find_browser(st, d.generation);
      if (b == nullptr || all_pages_ready(*b))
        return;
      ++st.status->hangs;
      browser_lost(self, d.generation, "did not start in time");
    },
    [=](atom::tick) { heartbeat(self); },
  };
}

} // namespace

caf::actor spawn_browser_slot(caf::actor_system& sys, int index,
                              browser_slot_options opts,
                              std::shared_ptr<slot_status> status) {
  return sys.spawn(browser_slot, index, std::move(opts), std::move(status));
}

} // namespace vantage
