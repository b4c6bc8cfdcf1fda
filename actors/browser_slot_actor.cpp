#include "actors/browser_slot_actor.hpp"

#include <deque>
#include <functional>
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

struct slot_job {
  uint64_t id = 0;
  page_render req;
  caf::response_promise rp;
  int page = -1;
  steady::time_point started;
  steady::time_point loaded;
};

struct slot_state {
  int index = 0;
  browser_slot_options opts;
  std::shared_ptr<slot_status> status;
  std::unique_ptr<chromium_process> browser;
  uint64_t generation = 0;
  int64_t next_call = 0;
  std::unordered_map<int64_t, reply_fn> calls;
  std::vector<slot_page> pages;
  std::deque<slot_job> waiting;
  std::unordered_map<uint64_t, slot_job> running;
  uint64_t next_job = 1;
  int renders_since_start = 0;
  bool heartbeat_out = false;
  steady::time_point heartbeat_sent;
  simdjson::dom::parser parser;
  static inline const char* name = "browser_slot";
};

using slot_actor = caf::stateful_actor<slot_state>;

void start_browser(slot_actor* self);

/// Ends a browser off the scheduler's threads: the kill, the reap and the
/// reader's join take a few milliseconds that no actor should wait for.
void retire(std::unique_ptr<chromium_process> browser) {
  if (browser)
    std::thread{[b = std::move(browser)]() mutable { b.reset(); }}.detach();
}

void call(slot_actor* self, const std::string& session, const char* method,
          const std::string& params, reply_fn then) {
  auto& st = self->state;
  auto id = ++st.next_call;
  json_writer w;
  w.begin_object().key("id").value(id).key("method").value(method);
  if (!session.empty())
    w.key("sessionId").value(session);
  w.key("params").raw(params.empty() ? "{}" : params).end_object();
  st.calls.emplace(id, std::move(then));
  if (!st.browser || !st.browser->send(w.take())) {
    // The pipe is gone; the reader's cdp_closed follows and fails the job.
    st.calls.erase(id);
  }
}

void publish_status(slot_state& st) {
  int32_t ready = 0;
  for (auto& p : st.pages)
    ready += p.ready && !p.busy;
  st.status->pages_ready = ready;
  st.status->busy = static_cast<int32_t>(st.running.size());
}

void pump(slot_actor* self);
bool recycle_due(const slot_state& st);

void finish(slot_actor* self, uint64_t job_id, caf::expected<page_output> out) {
  auto& st = self->state;
  auto it = st.running.find(job_id);
  if (it == st.running.end())
    return;
  auto job = std::move(it->second);
  st.running.erase(it);
  if (job.page >= 0 && job.page < static_cast<int>(st.pages.size()))
    st.pages[static_cast<size_t>(job.page)].busy = false;
  if (out) {
    out->slot = st.index;
    ++st.status->renders;
    ++st.renders_since_start;
    job.rp.deliver(std::move(*out));
  } else {
    job.rp.deliver(std::move(out.error()));
  }
  if (recycle_due(st) && st.running.empty()) {
    log_event(log_level::info, "browser_slot", "recycling browser",
              "\"slot\":" + std::to_string(st.index) + ",\"renders\":"
                + std::to_string(st.renders_since_start));
    start_browser(self);
    return;
  }
  publish_status(st);
  pump(self);
}

/// Fails every render on the browser, then starts a new one; renders that
/// were still waiting for a page stay queued for it.
void browser_lost(slot_actor* self, const std::string& why) {
  auto& st = self->state;
  log_event(log_level::warn, "browser_slot", "browser lost: " + why,
            "\"slot\":" + std::to_string(st.index) + ",\"renders_in_flight\":"
              + std::to_string(st.running.size()));
  auto running = std::move(st.running);
  st.running.clear();
  for (auto& [id, job] : running)
    job.rp.deliver(make_error(errc::render_failed, browser_lost_message));
  start_browser(self);
}

/// Closes the tab Chromium opens at start (about:blank): it is not one of
/// our pages and would keep a renderer process (tens of MB) for nothing.
void close_other_pages(slot_actor* self) {
  call(self, "", "Target.getTargets", "",
       [self](simdjson::dom::element r, const std::string& err) {
         simdjson::dom::array infos;
         if (!err.empty() || r["targetInfos"].get(infos) != simdjson::SUCCESS)
           return;
         for (auto info : infos) {
           std::string_view id;
           std::string_view type;
           if (info["targetId"].get(id) != simdjson::SUCCESS
               || info["type"].get(type) != simdjson::SUCCESS || type != "page")
             continue;
           auto& pages = self->state.pages;
           if (std::any_of(pages.begin(), pages.end(),
                           [&](const slot_page& p) { return p.target_id == id; }))
             continue;
           json_writer p;
           p.begin_object().key("targetId").value(id).end_object();
           call(self, "", "Target.closeTarget", p.take(),
                [](simdjson::dom::element, const std::string&) {});
         }
       });
}

/// The first capture of a page costs about a second (raster and encoder
/// start-up); it is paid here, at the card's size, before the page counts
/// as ready, so no request ever waits for it.
template <class Alive, class Fail>
void warm_up(slot_actor* self, size_t index, Alive alive, Fail fail) {
  auto session = self->state.pages[index].session_id;
  call(self, session, "Emulation.setDeviceMetricsOverride",
       R"({"width":1200,"height":630,"deviceScaleFactor":1,"mobile":false})",
       [=](simdjson::dom::element, const std::string& err) {
         if (!err.empty())
           return fail("Emulation.setDeviceMetricsOverride", err);
         json_writer p;
         p.begin_object().key("frameId").value(self->state.pages[index].frame_id)
           .key("html").value(self->state.opts.warm_up_html).end_object();
         call(self, session, "Page.setDocumentContent", p.take(),
              [](simdjson::dom::element, const std::string&) {});
         call(self, session, "Runtime.evaluate",
              std::string{R"({"awaitPromise":true,"expression":)"}
                + json_quote(wait_for_content_js) + "}",
              [](simdjson::dom::element, const std::string&) {});
         call(self, session, "Page.captureScreenshot",
              R"({"format":"png","clip":{"x":0,"y":0,"width":1200,"height":630,"scale":1}})",
              [=](simdjson::dom::element, const std::string& err) {
                if (!alive())
                  return;
                if (!err.empty())
                  return fail("Page.captureScreenshot", err);
                auto& pg = self->state.pages[index];
                pg.width = 1200;
                pg.height = 630;
                pg.ready = true;
                auto& pages = self->state.pages;
                if (std::all_of(pages.begin(), pages.end(),
                                [](const slot_page& p) { return p.ready; }))
                  close_other_pages(self);
                publish_status(self->state);
                pump(self);
              });
       });
}

void setup_page(slot_actor* self, size_t index) {
  auto gen = self->state.generation;
  auto alive = [self, gen] { return self->state.generation == gen; };
  auto fail = [self, alive](const std::string& step, const std::string& err) {
    if (alive())
      browser_lost(self, step + ": " + err);
  };
  // Each page in a window of its own: a background tab is throttled.
  call(self, "", "Target.createTarget",
       R"({"url":"about:blank","newWindow":true})",
       [=](simdjson::dom::element r, const std::string& err) {
         std::string_view target;
         if (!err.empty() || r["targetId"].get(target) != simdjson::SUCCESS)
           return fail("Target.createTarget", err);
         self->state.pages[index].target_id = std::string{target};
         json_writer p;
         p.begin_object().key("targetId").value(target).key("flatten").value(true)
           .end_object();
         call(self, "", "Target.attachToTarget", p.take(),
              [=](simdjson::dom::element r, const std::string& err) {
                std::string_view session;
                if (!err.empty() || r["sessionId"].get(session) != simdjson::SUCCESS)
                  return fail("Target.attachToTarget", err);
                self->state.pages[index].session_id = std::string{session};
                call(self, std::string{session}, "Page.getFrameTree", "",
                     [=](simdjson::dom::element r, const std::string& err) {
                       std::string_view frame;
                       if (!err.empty()
                           || r["frameTree"]["frame"]["id"].get(frame)
                                != simdjson::SUCCESS)
                         return fail("Page.getFrameTree", err);
                       auto& pg = self->state.pages[index];
                       pg.frame_id = std::string{frame};
                       warm_up(self, index, alive, fail);
                     });
              });
       });
}

void start_browser(slot_actor* self) {
  auto& st = self->state;
  retire(std::move(st.browser));
  auto gen = ++st.generation;
  st.calls.clear();
  st.pages.assign(static_cast<size_t>(std::max(1, st.opts.pages)), slot_page{});
  st.renders_since_start = 0;
  st.heartbeat_out = false;
  publish_status(st);
  caf::actor me = caf::actor_cast<caf::actor>(self);
  std::string err;
  st.browser = chromium_process::launch(
    st.opts.chromium,
    [me, gen](std::string text) {
      caf::anon_send(me, cdp_in{gen, std::move(text)});
    },
    [me, gen] { caf::anon_send(me, cdp_closed{gen}); }, err);
  if (!st.browser) {
    log_event(log_level::error, "browser_slot", "cannot start chromium: " + err,
              "\"slot\":" + std::to_string(st.index));
    auto waiting = std::move(st.waiting);
    st.waiting.clear();
    for (auto& job : waiting)
      job.rp.deliver(make_error(errc::render_failed, "cannot start chromium"));
    self->delayed_send(self, std::chrono::seconds{1}, start_deadline{gen});
    return;
  }
  st.status->pid = st.browser->pid();
  ++st.status->restarts;
  for (size_t i = 0; i < st.pages.size(); ++i)
    setup_page(self, i);
  self->delayed_send(self, st.opts.start_timeout, start_deadline{gen});
}

void run_job(slot_actor* self, slot_job job, size_t page_index) {
  auto& st = self->state;
  auto& pg = st.pages[page_index];
  pg.busy = true;
  job.page = static_cast<int>(page_index);
  job.started = steady::now();
  auto id = job.id;
  auto gen = st.generation;
  auto req = job.req;
  st.running.emplace(id, std::move(job));
  publish_status(st);
  self->delayed_send(self, req.timeout, render_deadline{gen, id});
  auto session = pg.session_id;
  auto live = [self, id, gen] {
    return self->state.generation == gen && self->state.running.count(id) > 0;
  };
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
    call(self, session, "Page.captureScreenshot", p.take(),
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
    call(self, session, "Runtime.evaluate", p.take(),
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
    p.begin_object().key("frameId").value(self->state.pages[page_index].frame_id)
      .key("html").value(req.html).end_object();
    call(self, session, "Page.setDocumentContent", p.take(),
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
  call(self, session, "Emulation.setDeviceMetricsOverride", p.take(),
       [=](simdjson::dom::element, const std::string& err) {
         if (!live())
           return;
         if (!err.empty())
           return fail("Emulation.setDeviceMetricsOverride", err);
         auto& pg = self->state.pages[page_index];
         pg.width = req.width;
         pg.height = req.height;
         set_content();
       });
}

bool recycle_due(const slot_state& st) {
  return st.opts.recycle_after > 0
         && st.renders_since_start >= st.opts.recycle_after;
}

void pump(slot_actor* self) {
  auto& st = self->state;
  // A browser due for recycling takes no new render, so the ones it has
  // drain and the restart happens even under constant load.
  if (recycle_due(st)) {
    for (auto& p : st.pages)
      p.ready = false;
    publish_status(st);
    return;
  }
  for (size_t i = 0; i < st.pages.size() && !st.waiting.empty(); ++i) {
    auto& pg = st.pages[i];
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
void reset_page(slot_actor* self, size_t index) {
  auto& st = self->state;
  auto& pg = st.pages[index];
  if (!pg.target_id.empty()) {
    json_writer p;
    p.begin_object().key("targetId").value(pg.target_id).end_object();
    call(self, "", "Target.closeTarget", p.take(),
         [](simdjson::dom::element, const std::string&) {});
  }
  pg = slot_page{};
  setup_page(self, index);
}

void on_message(slot_actor* self, const cdp_in& msg) {
  auto& st = self->state;
  if (msg.generation != st.generation)
    return;
  simdjson::dom::element doc;
  if (st.parser.parse(msg.text).get(doc) != simdjson::SUCCESS)
    return;
  int64_t id = 0;
  if (doc["id"].get(id) == simdjson::SUCCESS) {
    auto it = st.calls.find(id);
    if (it == st.calls.end())
      return;
    auto fn = std::move(it->second);
    st.calls.erase(it);
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
    // One page's renderer died: fail its render, replace the page.
    std::string_view session;
    if (doc["sessionId"].get(session) != simdjson::SUCCESS
        && doc["params"]["sessionId"].get(session) != simdjson::SUCCESS)
      return;
    for (size_t i = 0; i < st.pages.size(); ++i) {
      if (st.pages[i].session_id != session || session.empty())
        continue;
      for (auto& [job_id, job] : st.running)
        if (job.page == static_cast<int>(i)) {
          auto rp = job.rp;
          st.running.erase(job_id);
          rp.deliver(make_error(errc::render_failed, browser_lost_message));
          break;
        }
      ++st.status->crashes;
      reset_page(self, i);
      break;
    }
  }
}

void heartbeat(slot_actor* self) {
  auto& st = self->state;
  self->delayed_send(self, st.opts.heartbeat, atom::tick_v);
  bool up = st.browser != nullptr
            && std::any_of(st.pages.begin(), st.pages.end(),
                           [](const slot_page& p) { return p.ready; });
  if (!up)
    return; // starting: start_deadline watches it
  auto now = steady::now();
  if (st.heartbeat_out) {
    if (now - st.heartbeat_sent > st.opts.hang_after) {
      ++st.status->hangs;
      browser_lost(self, "no answer for "
                           + std::to_string(st.opts.hang_after.count())
                           + " ms (hung)");
    }
    return;
  }
  st.heartbeat_out = true;
  st.heartbeat_sent = now;
  auto gen = st.generation;
  call(self, "", "Browser.getVersion", "",
       [self, gen](simdjson::dom::element, const std::string&) {
         if (self->state.generation == gen)
           self->state.heartbeat_out = false;
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
  start_browser(self);
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
      auto& st = self->state;
      if (msg.generation != st.generation)
        return;
      ++st.status->crashes;
      browser_lost(self, "the browser process exited");
    },
    [=](render_deadline& d) {
      auto& st = self->state;
      if (d.generation != st.generation)
        return;
      auto it = st.running.find(d.job);
      if (it == st.running.end())
        return;
      auto page = it->second.page;
      ++st.status->timeouts;
      // Out of service before finish() hands out pages again: it may still
      // be busy with the late render.
      if (page >= 0)
        st.pages[static_cast<size_t>(page)].ready = false;
      auto gen = st.generation;
      finish(self, d.job,
             make_error(errc::render_timeout,
                        "render took longer than "
                          + std::to_string(it->second.req.timeout.count())
                          + " ms"));
      if (page >= 0 && self->state.generation == gen)
        reset_page(self, static_cast<size_t>(page));
    },
    [=](start_deadline& d) {
      auto& st = self->state;
      if (d.generation != st.generation)
        return;
      bool ready = st.browser
                   && std::all_of(st.pages.begin(), st.pages.end(),
                                  [](const slot_page& p) { return p.ready || p.busy; });
      if (!ready) {
        if (st.browser)
          ++st.status->hangs;
        browser_lost(self, st.browser ? "did not start in time" : "restart");
      }
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
