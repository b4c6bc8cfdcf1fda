#pragma once

#include <string>

namespace vantage {

/// Writes `content` to `path` so that readers see the old file or the whole
/// new one, never a part: a temporary file beside it, fsync, rename.
/// Returns false with `err` set on failure (the temporary file is removed).
bool write_file_atomically(const std::string& path, const std::string& content,
                           std::string& err);

} // namespace vantage
