// placeholder: filled in by its owner
#include <cstdio>
#include "app/commands.hpp"
int vantage::replay_main(int, char**) { std::fprintf(stderr, "not implemented yet\n"); return 1; }
