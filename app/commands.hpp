#pragma once

// Subcommands of the `vantage` executable; main.cpp dispatches on argv[1].
// Each receives argc/argv with the subcommand name as argv[0].

namespace vantage {

/// `vantage run`: migrate, load the demo catalog if empty, serve (make run).
int run_main(int argc, char** argv);
/// `vantage node`: serve HTTP and actors with the configuration from env.
int node_main(int argc, char** argv);
/// `vantage migrate [--demo-catalog]`: apply SQL migrations (and demo data).
int migrate_main(int argc, char** argv);
/// `vantage kafka`: the embedded Kafka (librdkafka mock cluster) process.
int kafka_mock_main(int argc, char** argv);
/// `vantage token --sub ID --name NAME ...`: mint a dev JWT.
int token_main(int argc, char** argv);
/// `vantage replay [--target URL] FILE...`: replay scenarios.
int replay_main(int argc, char** argv);

} // namespace vantage
