// placeholder: filled in by its owner
#include <cstdio>
#include "app/commands.hpp"
#include "app/node.hpp"
int vantage::run_main(int, char**) { std::fprintf(stderr, "not implemented yet\n"); return 1; }
int vantage::node_main(int, char**) { std::fprintf(stderr, "not implemented yet\n"); return 1; }
int vantage::migrate_main(int, char**) { std::fprintf(stderr, "not implemented yet\n"); return 1; }
std::unique_ptr<vantage::embedded_node> vantage::embedded_node::start(std::string& err) { err = "not implemented yet"; return nullptr; }
