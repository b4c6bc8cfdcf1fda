#include <cstdio>
#include <cstring>
#include <string>

#include "app/commands.hpp"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: vantage <command> [options]\n"
               "commands:\n"
               "  run       migrate, load the demo catalog, serve (make run)\n"
               "  node      serve the gateway and actors\n"
               "  migrate   apply database migrations [--demo-catalog]\n"
               "  kafka     run the embedded Kafka (mock cluster)\n"
               "  token     mint a development JWT\n"
               "  replay    replay scenario files\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    return usage();
  std::string cmd = argv[1];
  int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  if (cmd == "run")
    return vantage::run_main(sub_argc, sub_argv);
  if (cmd == "node")
    return vantage::node_main(sub_argc, sub_argv);
  if (cmd == "migrate")
    return vantage::migrate_main(sub_argc, sub_argv);
  if (cmd == "kafka")
    return vantage::kafka_mock_main(sub_argc, sub_argv);
  if (cmd == "token")
    return vantage::token_main(sub_argc, sub_argv);
  if (cmd == "replay")
    return vantage::replay_main(sub_argc, sub_argv);
  return usage();
}
