#include "adapters/files.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <cstring>

#include <unistd.h>

namespace vantage {

bool write_file_atomically(const std::string& path, const std::string& content,
                           std::string& err) {
  // Unique per call, not only per process: threads writing the same path
  // at once must not share (and corrupt) one temporary file.
  static std::atomic<uint64_t> seq{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "."
                    + std::to_string(seq.fetch_add(1));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    err = "cannot open " + tmp + ": " + std::strerror(errno);
    return false;
  }
  bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(::fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = "cannot write " + path + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

} // namespace vantage
