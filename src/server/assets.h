// The chat page's files, embedded into the binary at build time (cmake/embed_assets.cmake turns
// src/server/assets/* into a generated source), so the server needs no files or network at run
// time. Immutable; safe from any thread.
#pragma once
#include <cstddef>
#include <span>
#include <string_view>

namespace bitnet::server {

struct Asset {
  const char* path;          // "/index.html", "/app.js", ...
  const char* content_type;
  const char* data;
  size_t size;
};

std::span<const Asset> assets();

inline const Asset* find_asset(std::string_view path) {
  for (const Asset& a : assets())
    if (path == a.path) return &a;
  return nullptr;
}

}  // namespace bitnet::server
