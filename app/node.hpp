#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace vantage {

/// A complete node (actor system, regions, outbox relay, HTTP gateway) in
/// this process, configured from the VANTAGE_* environment but with a
/// virtual clock and an ephemeral HTTP port. Used by `vantage replay` and
/// integration tests.
class embedded_node {
public:
  virtual ~embedded_node() = default;

  /// Starts a node; returns nullptr and sets `err` on failure.
  static std::unique_ptr<embedded_node> start(std::string& err);

  /// e.g. "http://127.0.0.1:41234"
  virtual std::string base_url() const = 0;

  /// Advances the node's virtual clock, firing every timer that falls due.
  virtual void advance(std::chrono::milliseconds d) = 0;

  /// Bootstrap list of the Kafka cluster the node publishes to.
  virtual std::string kafka_bootstrap() const = 0;

  /// Stops the gateway and the actor system. Idempotent.
  virtual void stop() = 0;
};

} // namespace vantage
