#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace vantage::test {

/// Polls `cond` until it holds or `deadline` passes: tests wait on a
/// condition with a deadline, never on a fixed sleep.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (cond())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return cond();
}

} // namespace vantage::test
