// `vantage kafka`: the embedded Kafka, a librdkafka mock cluster that lives as
// long as this process. It creates every topic of known_topics(), writes the
// bootstrap list to --bootstrap-file (atomically, once the topics exist) and
// waits. SIGTERM/SIGINT stop it (exit 0, bootstrap file removed); SIGUSR1
// takes every broker down (simulated outage), SIGUSR2 brings them back.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "adapters/topics.hpp"
#include "adapters/files.hpp"
#include "app/commands.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_down = 0;
volatile std::sig_atomic_t g_up = 0;

extern "C" void on_signal(int sig) {
  switch (sig) {
    case SIGUSR1:
      g_down = 1;
      break;
    case SIGUSR2:
      g_up = 1;
      break;
    default:
      g_stop = 1;
  }
}

int usage() {
  std::fprintf(stderr, "usage: vantage kafka --bootstrap-file PATH [--brokers N]\n");
  return 2;
}


void set_brokers(rd_kafka_mock_cluster_t* mc, int n, bool up) {
  for (int32_t id = 1; id <= n; ++id) {
    auto err = up ? rd_kafka_mock_broker_set_up(mc, id)
                  : rd_kafka_mock_broker_set_down(mc, id);
    if (err)
      std::fprintf(stderr, "kafka: broker %d set %s failed: %s\n", id,
                   up ? "up" : "down", rd_kafka_err2str(err));
  }
  std::fprintf(stderr, "kafka: all %d brokers %s\n", n,
               up ? "up (outage over)" : "DOWN (simulated outage)");
}

} // namespace

int vantage::kafka_mock_main(int argc, char** argv) {
  std::string bootstrap_file;
  int brokers = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--bootstrap-file" && i + 1 < argc) {
      bootstrap_file = argv[++i];
    } else if (a.rfind("--bootstrap-file=", 0) == 0) {
      bootstrap_file = a.substr(17);
    } else if (a == "--brokers" && i + 1 < argc) {
      brokers = std::atoi(argv[++i]);
    } else if (a.rfind("--brokers=", 0) == 0) {
      brokers = std::atoi(a.c_str() + 10);
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "kafka: unknown argument '%s'\n", a.c_str());
      return usage();
    }
  }
  if (bootstrap_file.empty() || brokers < 1 || brokers > 64)
    return usage();

  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2})
    sigaction(sig, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only hosts the cluster; level 4 hides its "no
  // bootstrap.servers" notice.
  if (rd_kafka_conf_set(conf, "client.id", "vantage-kafka-mock", errstr,
                        sizeof(errstr))
        != RD_KAFKA_CONF_OK
      || rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "kafka: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return 1;
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) {
    std::fprintf(stderr, "kafka: rd_kafka_new failed: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    std::fprintf(stderr, "kafka: could not create the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }

  int rc = 0;
  for (auto& t : vantage::known_topics()) {
    int rf = brokers >= 3 ? 3 : brokers;
    auto err = rd_kafka_mock_topic_create(mc, t.name, t.partitions, rf);
    if (err && rf != 1)
      err = rd_kafka_mock_topic_create(mc, t.name, t.partitions, 1);
    if (err) {
      std::fprintf(stderr, "kafka: cannot create topic %s: %s\n", t.name,
                   rd_kafka_err2str(err));
      rc = 1;
      break;
    }
  }

  std::string bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
  std::string err;
  if (rc == 0 && !write_file_atomically(bootstrap_file, bootstraps + "\n", err)) {
    std::fprintf(stderr, "kafka: %s\n", err.c_str());
    rc = 1;
  }

  if (rc == 0) {
    std::printf("%s\n", bootstraps.c_str());
    std::fflush(stdout);
    std::fprintf(stderr,
                 "kafka: mock cluster with %d brokers, %zu topics; pid %d; "
                 "bootstrap file %s\n",
                 brokers, vantage::known_topics().size(),
                 static_cast<int>(::getpid()), bootstrap_file.c_str());
    while (!g_stop) {
      if (g_down) {
        g_down = 0;
        set_brokers(mc, brokers, false);
      }
      if (g_up) {
        g_up = 0;
        set_brokers(mc, brokers, true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::fprintf(stderr, "kafka: shutting down\n");
    std::remove(bootstrap_file.c_str());
  }

  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return rc;
}
